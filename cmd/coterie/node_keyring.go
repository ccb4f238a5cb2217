package main

import (
	"context"

	"github.com/spf13/cobra"

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
