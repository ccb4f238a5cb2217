// Command coterie is the one Coterie binary: the cluster node, the workspace
// simulator, the reference callback server and the demo, bench and drill tools.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "coterie:", err)
		os.Exit(1)
	}
}
