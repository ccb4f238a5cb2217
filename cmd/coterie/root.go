package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "coterie",
		Short:         "A clustered, high-availability MPC co-signer",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd())
	root.AddCommand(newNodeCmd())
	root.AddCommand(newCallbackCmd())
	root.AddCommand(newWorkspaceCmd())
	root.AddCommand(newDemoCmd())
	root.AddCommand(newBenchCmd())
	root.AddCommand(newDrillCmd())
	root.AddCommand(newBridgeCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			if info, ok := debug.ReadBuildInfo(); ok && v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
				v = info.Main.Version
			}
			fmt.Fprintf(cmd.OutOrStdout(), "coterie %s\n", v)
			return nil
		},
	}
}
