package node_test

import (
	"fmt"

	"github.com/coterie-mpc/coterie/node"
)

// ExampleParseConfig reads a minimal config: everything not given takes
// its default, and relative paths are resolved against the config file's
// directory.
func ExampleParseConfig() {
	cfg, err := node.ParseConfig([]byte(`
node_id: node-1
data_dir: node-1-data
log:
  file: node-1.log
`), "/etc/coterie")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.DataDir, cfg.Raft.Bind, cfg.Admin.Listen)
	fmt.Println(cfg.Log.File, cfg.Callback.Timeout, cfg.Callback.RetryAttempts, cfg.Callback.RetryInterval)

	_, err = node.ParseConfig([]byte("node_id: n1\nmode: production\n"), "/etc/coterie")
	fmt.Println(err)
	// Output:
	// /etc/coterie/node-1-data 127.0.0.1:7000 127.0.0.1:7080
	// /etc/coterie/node-1.log 30s 20 3m0s
	// node: invalid config: data_dir is required
	// node: invalid config: mode production refuses enclave.kind sim, which protects nothing
}
