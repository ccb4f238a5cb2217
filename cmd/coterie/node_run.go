package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/coterie-mpc/coterie/node"
)

// nodeCommands are the node subcommands that run and talk to a node.
func nodeCommands() []*cobra.Command {
	return []*cobra.Command{newNodeRunCmd(), newNodeJoinCmd(), newNodePairCmd(), newNodeUsersCmd(), newNodePrintPublicKeyCmd(),
		newNodeClusterCmd(), newNodeSnapshotCmd(), newNodeKeyringCmd(), newNodeRefreshCmd(), newNodeAuditCmd()}
}

// startTimeout bounds the wait for a raft leader and the cluster's callback
// key at start.
const startTimeout = 2 * time.Minute

func newNodeRunCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run a Coterie node from its YAML config",
		Long: "run starts a node: it initialises the data directory on first start (identity key and keyring, " +
			"sealed by the enclave), joins or bootstraps its raft cluster, serves the admin API (health, status, " +
			"metrics, pairing) and serves every paired API user. See node/testdata/example.yaml for every setting.\n\n" +
			"SIGINT or SIGTERM drains the node for a restart: it hands raft leadership to another voter if it " +
			"leads, stops claiming, lets the requests in flight finish within shutdown_grace and hands the rest " +
			"back to the other nodes, then exits; it stays a member. A second signal cuts the grace short. " +
			"`coterie node cluster leave` does the same and takes the node out of the cluster for good.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := node.LoadConfig(configPath)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			n, err := node.New(cfg)
			if err != nil {
				return err
			}
			startCtx, cancel := context.WithTimeout(ctx, startTimeout)
			err = n.Start(startCtx)
			cancel()
			if err != nil {
				return errors.Join(err, n.Close())
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "node %s ready: admin API %s, raft %s\n", cfg.NodeID, n.AdminURL(), n.Cluster().Addr())
			select {
			case <-ctx.Done():
				drain(cmd, n, cfg)
			case <-n.Drained():
				fmt.Fprintf(cmd.ErrOrStderr(), "node %s drained by `node cluster leave`\n", cfg.NodeID)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "node %s stopping\n", cfg.NodeID)
			return n.Close()
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the node's YAML config file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// drain drains a node that got SIGINT or SIGTERM; a second signal cuts
// the grace period short. A node that is not serving (a leave through
// the admin API is under way, say) has nothing to drain.
func drain(cmd *cobra.Command, n *node.Node, cfg node.Config) {
	// Listen for the second signal before the first listener goes, so
	// that no signal falls back to the default action (exit at once).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(cmd.ErrOrStderr(), "node %s draining: finishing the requests in flight for up to %s (a second signal hands them back at once)\n",
		cfg.NodeID, cfg.ShutdownGrace)
	rep, err := n.Drain(ctx)
	switch {
	case errors.Is(err, node.ErrNotReady):
	case err != nil:
		fmt.Fprintf(cmd.ErrOrStderr(), "node %s: %v\n", cfg.NodeID, err)
	default:
		fmt.Fprintf(cmd.ErrOrStderr(), "node %s drained: %d unfinished requests handed back\n", cfg.NodeID, len(rep.HandedBack))
	}
}
