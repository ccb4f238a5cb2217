package main

import (
	"crypto/ed25519"
	"encoding/hex"
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
	configPath    string
}

func (f *nodeFlags) register(cmd *cobra.Command) {
	def := backend.DefaultConfig()
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "the node's data directory")
	cmd.Flags().StringVar(&f.platformKey, "sim-platform-key", def.SimPlatformKeyFile,
		"sim enclave only: the simulated machine's platform key file, created if missing")
}

// fromConfig takes the data directory and, unless --sim-platform-key was
// given, the platform key file from the node's config file.
func (f *nodeFlags) fromConfig(cmd *cobra.Command) error {
	if f.configPath == "" {
		return nil
	}
	cfg, err := node.LoadConfig(f.configPath)
	if err != nil {
		return err
	}
	f.dataDir = cfg.DataDir
	if cfg.Enclave.SimPlatformKey != "" && !cmd.Flags().Changed("sim-platform-key") {
		f.platformKey = cfg.Enclave.SimPlatformKey
	}
	return nil
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
	_ = cmd.MarkFlagRequired("data-dir")
	cmd.Flags().StringVar(&f.enclaveName, "enclave", enclave.KindSim.String(),
		fmt.Sprintf("the enclave backend; this binary has %v", backend.Available()))
	cmd.Flags().StringVar(&f.keyPolicyName, "key-policy", enclave.KeyPolicyProduct.String(),
		"what sealing binds to: product (survives upgrades by the same signer) or code (this exact build)")
	return cmd
}

func newNodeStatusCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "status --config FILE | --data-dir DIR [--sim-platform-key FILE]",
		Short: "Show the node's enclave, identity public key and keyring version",
		Long: "status opens the node's store, unseals its records with its enclave to prove they are intact and " +
			"belong to this machine, and prints public facts only. --config takes the data directory and the sim " +
			"enclave's platform key file from the node's config; --data-dir names the directory alone. The node " +
			"must be stopped: a running node holds the store's lock.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.fromConfig(cmd); err != nil {
				return err
			}
			st, err := store.Open(storeConfig(cmd, f.dataDir))
			if err != nil {
				return err
			}
			defer st.Close()
			info := st.Info()
			u, err := node.Unseal(st, f.backendConfig(cmd, info.Kind, info.KeyPolicy))
			if err != nil {
				return err
			}
			clear(u.Identity)
			if err := printStatus(cmd.OutOrStdout(), f.dataDir, info.Kind, info.KeyPolicy, info.Identity, u.Keyring, info.Schema); err != nil {
				return err
			}
			// A sim cluster across machines lists each other's platform
			// keys (enclave.sim_trusted_platforms).
			if p, ok := enclave.Underlying(u.Enclave).(interface{ PlatformKey() ed25519.PublicKey }); ok {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "sim platform    %s\n", hex.EncodeToString(p.PlatformKey()))
			}
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.configPath, "config", "", "the node's YAML config file")
	cmd.MarkFlagsOneRequired("config", "data-dir")
	cmd.MarkFlagsMutuallyExclusive("config", "data-dir")
	return cmd
}

// printStatus prints public facts about a node. It is given the public key
// only, so it cannot print the private one.
func printStatus(w io.Writer, dir string, kind enclave.Kind, policy enclave.KeyPolicy, pub ed25519.PublicKey, kr *keyring.Keyring, schema uint32) error {
	_, err := fmt.Fprintf(w, "data directory  %s\nenclave         %s (key policy %s)\nidentity        ed25519:%s\nkeyring         version %d (holds %d)\nschema          %d\n",
		dir, kind, policy, hex.EncodeToString(pub), kr.Version(), len(kr.Versions()), schema)
	return err
}
