package main

import (
	"github.com/spf13/cobra"
)

func newClusterRotateKeyringCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "rotate-keyring --config FILE",
		Short: "Rotate the cluster keyring: a new version wrapped to every current member",
		Long: "rotate-keyring makes a new keyring version and commits it through raft wrapped to each current " +
			"member's identity key (never to a removed member, never under the old keyring). Each member takes it in " +
			"and seals it as it applies the entry; new records use it at once, and the leader re-encrypts the old ones " +
			"in the background. It prints JSON: the new version, the members it was wrapped to and those that took it " +
			"in so far, and the records left to re-encrypt. `node cluster keyring` follows the progress.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			r, err := c.RotateKeyring(ctx)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), r)
		},
	}
	configFlag(cmd, &configPath)
	return cmd
}

func newClusterKeyringCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "keyring --config FILE",
		Short: "Show the cluster keyring version of each member and the records left to re-encrypt",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			r, err := c.Keyring(ctx)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), r)
		},
	}
	configFlag(cmd, &configPath)
	return cmd
}
