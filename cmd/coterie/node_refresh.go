package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coterie-mpc/coterie/node"
)

func newNodeRefreshCmd() *cobra.Command {
	var configPath, user string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "refresh --config FILE --user USER [--json]",
		Short: "Give an API user's MPC key new shares, on the cluster and at the cloud co-signers",
		Long: "refresh runs a proactive refresh of the user's MPC key shares with the cloud co-signers: every party " +
			"gets a new share of the same key, so the public key, the chain code and every address stay, and a share " +
			"stolen before the refresh is useless after it. The cluster commits its new share through raft and burns " +
			"every presignature made with the old ones; the pool refills by itself. A refresh cut off half way leaves " +
			"every party on the old shares, and running it again works. USER is WORKSPACE/USER, or a user id that " +
			"only one workspace has.\n\n" +
			"The node's config can also refresh on a schedule: refresh.interval, and refresh.users per user.",
		Example: "  coterie node refresh --config node.yaml --user default/u-000001",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(configPath)
			if err != nil {
				return err
			}
			var rep node.RefreshReport
			err = spin(cmd.ErrOrStderr(), "refreshing the key shares (takes a few seconds)", func() (err error) {
				rep, err = c.Refresh(cmd.Context(), user)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "refreshed the key shares of %s in %.1f s\n", rep.User, rep.Seconds)
			fmt.Fprintf(cmd.OutOrStdout(), "signing key      %s (unchanged)\n", rep.PublicKey)
			fmt.Fprintf(cmd.OutOrStdout(), "share epoch      %s -> %s\n", rep.FromEpoch, rep.Epoch)
			fmt.Fprintln(cmd.OutOrStdout(), "save a new snapshot (coterie node snapshot save): those saved before cannot sign for this user")
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the node's YAML config file (required)")
	cmd.Flags().StringVar(&user, "user", "", "the API user: WORKSPACE/USER, or a user id only one workspace has (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the refresh as JSON")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}
