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
	return []*cobra.Command{newNodeRunCmd(), newNodePairCmd(), newNodeUsersCmd(), newNodePrintPublicKeyCmd()}
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
			"metrics, pairing) and serves every paired API user. See node/testdata/example.yaml for every setting. " +
			"It stops on SIGINT or SIGTERM.",
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
			<-ctx.Done()
			fmt.Fprintf(cmd.ErrOrStderr(), "node %s stopping\n", cfg.NodeID)
			return n.Close()
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the node's YAML config file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
