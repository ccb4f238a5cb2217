package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
	"github.com/coterie-mpc/coterie/node"
)

func newClusterRotateKeyringCmd() *cobra.Command {
	return adminJSONCmd(&cobra.Command{
		Use:   "rotate-keyring --config FILE",
		Short: "Rotate the cluster keyring: a new version wrapped to every current member",
		Long: "rotate-keyring makes a new keyring version and commits it through raft wrapped to each current " +
			"member's identity key (never to a removed member, never under the old keyring). Each member takes it in " +
			"and seals it as it applies the entry; new records use it at once, and the leader re-encrypts the old ones " +
			"in the background. It prints JSON: the new version, the members it was wrapped to and those that took it " +
			"in so far, and the records left to re-encrypt. `node cluster keyring` follows the progress.",
	}, func(ctx context.Context, c *node.AdminClient) (any, error) { return c.RotateKeyring(ctx) })
}

func newClusterKeyringCmd() *cobra.Command {
	return adminJSONCmd(&cobra.Command{
		Use:   "keyring --config FILE",
		Short: "Show the cluster keyring version of each member and the records left to re-encrypt",
	}, func(ctx context.Context, c *node.AdminClient) (any, error) { return c.Keyring(ctx) })
}

// adminJSONCmd completes cmd as a command that makes one admin call to the
// node --config names and prints its answer as JSON.
func adminJSONCmd(cmd *cobra.Command, call func(context.Context, *node.AdminClient) (any, error)) *cobra.Command {
	var configPath string
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
		if err != nil {
			return err
		}
		defer cancel()
		r, err := call(ctx, c)
		if err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), r)
	}
	configFlag(cmd, &configPath)
	return cmd
}

func newNodeKeyringCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keyring",
		Short: "Export the cluster keyring to an offline recovery key, or import it into a new node",
		Long: "A recovery file holds the cluster keyring encrypted with age to operators' offline recovery keys " +
			"(X25519 recipients, age1...). With a snapshot file (`node snapshot save`) it rebuilds a cluster whose " +
			"every enclave is lost: import the keyring into a new node, start it, and restore the snapshot onto it. " +
			"Whoever holds a recovery key and a snapshot holds every MPC share of this co-signer: keep the key offline.",
	}
	cmd.AddCommand(newNodeKeyringExportCmd(), newNodeKeyringImportCmd())
	return cmd
}

func newNodeKeyringExportCmd() *cobra.Command {
	var configPath, recipient, out string
	cmd := &cobra.Command{
		Use:   "export --config FILE [--recipient age1...] --out FILE",
		Short: "Write the running node's keyring encrypted to the recovery keys its config lists (mode 0600)",
		Long: "export asks the running node for its keyring encrypted, inside the node, to one of the age recipients " +
			"its config lists under recovery.recipients (--recipient), or to all of them. A recipient the config does " +
			"not list is refused: the admin token alone cannot send the keyring to a key of its own.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			file, err := c.ExportKeyring(ctx, recipient)
			if err != nil {
				return err
			}
			h, err := keyring.ReadRecoveryHeader(bytes.NewReader(file))
			if err != nil {
				return fmt.Errorf("the node sent a file that does not read: %w", err)
			}
			if err := atomicfile.Write(out, file, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "keyring of cluster %s (versions %v) encrypted to %s written to %s\n",
				h.ClusterID, h.Versions, strings.Join(h.Recipients, ", "), out)
			return nil
		},
	}
	configFlag(cmd, &configPath)
	cmd.Flags().StringVar(&recipient, "recipient", "", "one of the config's recovery.recipients; empty: all of them")
	cmd.Flags().StringVar(&out, "out", "", "the file to write (required)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newNodeKeyringImportCmd() *cobra.Command {
	var configPath, identity string
	cmd := &cobra.Command{
		Use:   "import --config FILE --identity KEYFILE|- RECOVERY-FILE",
		Short: "Seal a recovery file's keyring in a new node's enclave, for rebuilding a lost cluster",
		Long: "import decrypts a recovery file with the operator's age identity (a key file as age-keygen writes " +
			"it, or standard input for -), and seals its keyring in this node's enclave, creating the node's store on " +
			"first use. The node must be new: no raft state, no cluster joined. Its first `node run` (with " +
			"raft.bootstrap) then starts the cluster under the file's cluster id, so that the cluster's snapshots " +
			"restore onto it (`node snapshot restore`). The identity is read into memory only.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := readIdentities(cmd, identity)
			if err != nil {
				return err
			}
			cfg, err := node.LoadConfig(configPath)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			h, err := node.ImportKeyring(cfg, f, ids)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "keyring of cluster %s (versions %v, exported by %s) sealed in node %s\n"+
				"start it with: coterie node run --config %s, then restore a snapshot of the cluster onto it\n",
				h.ClusterID, h.Versions, h.Node, cfg.NodeID, configPath)
			return nil
		},
	}
	configFlag(cmd, &configPath)
	cmd.Flags().StringVar(&identity, "identity", "", "the age identity file, or - for standard input (required)")
	_ = cmd.MarkFlagRequired("identity")
	return cmd
}

// errIdentity says an identity file holds no age identity; it never
// quotes the file.
var errIdentity = errors.New("--identity: no age X25519 identity (AGE-SECRET-KEY-1...) could be read from it")

// readIdentities reads age identities from a file or standard input.
// Errors never carry the file's content.
func readIdentities(cmd *cobra.Command, path string) ([]age.Identity, error) {
	r := cmd.InOrStdin()
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--identity: %w", err)
		}
		defer f.Close()
		r = f
	}
	ids, err := age.ParseIdentities(io.LimitReader(r, 64<<10))
	if err != nil {
		return nil, errIdentity
	}
	return ids, nil
}
