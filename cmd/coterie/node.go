package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/backend"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/enclave/store"
	"github.com/coterie-mpc/coterie/node"
)

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Initialize and inspect a Coterie cluster node",
	}
	cmd.AddCommand(newNodeInitCmd(), newNodeStatusCmd())
	cmd.AddCommand(nodeCommands()...)
	return cmd
}

// nodeFlags are the flags that init and status share.
type nodeFlags struct {
	dataDir       string
	platformKey   string
	enclaveName   string
	keyPolicyName string
}

func (f *nodeFlags) register(cmd *cobra.Command) {
	def := backend.DefaultConfig()
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "the node's data directory (required)")
	cmd.Flags().StringVar(&f.platformKey, "sim-platform-key", def.SimPlatformKeyFile,
		"sim enclave only: the simulated machine's platform key file, created if missing")
	_ = cmd.MarkFlagRequired("data-dir")
}

func (f *nodeFlags) backendConfig(cmd *cobra.Command, kind enclave.Kind, policy enclave.KeyPolicy) backend.Config {
	cfg := backend.DefaultConfig()
	cfg.Kind = kind
	cfg.KeyPolicy = policy
	cfg.DataDir = f.dataDir
	cfg.SimPlatformKeyFile = f.platformKey
	cfg.Logger = cmdLogger(cmd.ErrOrStderr())
	return cfg
}

func storeConfig(cmd *cobra.Command, dir string) store.Config {
	cfg := store.DefaultConfig()
	cfg.Dir = dir
	cfg.Logger = cmdLogger(cmd.ErrOrStderr())
	return cfg
}

func cmdLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newNodeInitCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "init --data-dir DIR [--enclave sim]",
		Short: "Create the node's identity key and keyring, sealed by its enclave",
		Long: "init creates a new node in an empty data directory: an Ed25519 identity key and a fresh keyring, " +
			"both sealed by the node's enclave, in DIR/node.db. It never overwrites an initialized directory.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kind, err := enclave.ParseKind(f.enclaveName)
			if err != nil {
				return err
			}
			policy, err := enclave.ParseKeyPolicy(f.keyPolicyName)
			if err != nil {
				return err
			}
			// Check first, so that a refused init leaves the directory as
			// it was (the sim backend would create its root).
			if exists, err := store.Exists(f.dataDir); err != nil || exists {
				if err == nil {
					err = fmt.Errorf("%w: %s", store.ErrAlreadyInitialized, f.dataDir)
				}
				return err
			}
			pub, kr, err := node.Initialize(f.backendConfig(cmd, kind, policy), storeConfig(cmd, f.dataDir))
			if err != nil {
				return err
			}
			return printStatus(cmd.OutOrStdout(), f.dataDir, kind, policy, pub, kr, store.SchemaVersion)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.enclaveName, "enclave", enclave.KindSim.String(),
		fmt.Sprintf("the enclave backend; this binary has %v", backend.Available()))
	cmd.Flags().StringVar(&f.keyPolicyName, "key-policy", enclave.KeyPolicyProduct.String(),
		"what sealing binds to: product (survives upgrades by the same signer) or code (this exact build)")
	return cmd
}

func newNodeStatusCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "status --data-dir DIR",
		Short: "Show the node's enclave, identity public key and keyring version",
		Long: "status opens the node's store, unseals its records with its enclave to prove they are intact and " +
			"belong to this machine, and prints public facts only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := store.Open(storeConfig(cmd, f.dataDir))
			if err != nil {
				return err
			}
			defer st.Close()
			info := st.Info()
			enc, err := backend.New(f.backendConfig(cmd, info.Kind, info.KeyPolicy))
			if err != nil {
				return err
			}
			identity, err := st.Identity(enc)
			if err != nil {
				return err
			}
			if !identity.Public().(ed25519.PublicKey).Equal(info.Identity) {
				return errors.New("the sealed identity key does not match its public key")
			}
			kr, err := st.Keyring(enc)
			if err != nil {
				return err
			}
			return printStatus(cmd.OutOrStdout(), f.dataDir, info.Kind, info.KeyPolicy, info.Identity, kr, info.Schema)
		},
	}
	f.register(cmd)
	return cmd
}

// printStatus prints public facts about a node. It is given the public key
// only, so it cannot print the private one.
func printStatus(w io.Writer, dir string, kind enclave.Kind, policy enclave.KeyPolicy, pub ed25519.PublicKey, kr *keyring.Keyring, schema uint32) error {
	_, err := fmt.Fprintf(w, "data directory  %s\nenclave         %s (key policy %s)\nidentity        ed25519:%s\nkeyring         version %d (holds %d)\nschema          %d\n",
		dir, kind, policy, hex.EncodeToString(pub), kr.Version(), len(kr.Versions()), schema)
	return err
}
