package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/bench/launch"
	"github.com/coterie-mpc/coterie/node"
)

const (
	// demoNodeStart bounds the wait for a node process to serve: a first
	// start (sealing, bootstrap or join, catch-up) or a restart.
	demoNodeStart = 90 * time.Second
	// demoNodeStop bounds a node's drain after SIGTERM (shutdown_grace is
	// 2s in the demo's configs) before the demo kills it.
	demoNodeStop = 15 * time.Second
	// demoCallTimeout bounds one admin API call of the demo's watch loop.
	demoCallTimeout = 3 * time.Second
)

// demoNode is one `coterie node run` process of the demo's cluster: its
// config, its log file and, while it runs, the process.
type demoNode struct {
	id       string
	confPath string
	cfg      node.Config
	logPath  string
	// tokenPath holds the join token of a node's first start, removed
	// once it has joined; empty for the node that bootstraps.
	tokenPath string
	// admin is set once the node has written its admin token.
	admin *node.AdminClient
	http  *http.Client

	// proc is the process, nil before the first start.
	proc *launch.Proc
}

// healthURL is the node's /v1/health; the demo's admin addresses are fixed,
// so it outlives a restart.
func (n *demoNode) healthURL() string { return "http://" + n.cfg.Admin.Listen + node.PathHealth }

// start runs `coterie node run` for n with exe, the demo's own binary,
// appending its output to n's log file.
func (n *demoNode) start(exe string) (err error) {
	n.proc, err = launch.StartProc(n.id, n.logPath, exe, "node", "run", "--config", n.confPath)
	return err
}

func (n *demoNode) running() bool { return n.proc.Running() }

func (n *demoNode) kill() { n.proc.Kill() }

// stop asks n's process to drain and stop (SIGTERM), and kills it if it
// has not stopped within demoNodeStop.
func (n *demoNode) stop() { n.proc.Stop(demoNodeStop) }

func (n *demoNode) exitErr() error { return n.proc.ExitErr() }

// health returns n's /v1/health status code and body.
func (n *demoNode) health(ctx context.Context) (int, node.Health, error) {
	ctx, cancel := context.WithTimeout(ctx, demoCallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.healthURL(), nil)
	if err != nil {
		return 0, node.Health{}, err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return 0, node.Health{}, err
	}
	defer resp.Body.Close()
	var h node.Health
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&h); err != nil {
		return resp.StatusCode, h, fmt.Errorf("%s: health answer: %w", n.id, err)
	}
	return resp.StatusCode, h, nil
}

// nodeStatus is what the demo reads of a node's /v1/status: the status and
// its running Sessions, the requests it works on.
type nodeStatus struct {
	node.Status
	Sessions []actors.SessionStatus
}

// status returns n's /v1/status.
func (n *demoNode) status(ctx context.Context) (nodeStatus, error) {
	if n.admin == nil {
		return nodeStatus{}, fmt.Errorf("%s has not started", n.id)
	}
	ctx, cancel := context.WithTimeout(ctx, demoCallTimeout)
	defer cancel()
	s, err := n.admin.Status(ctx)
	if err != nil {
		return nodeStatus{}, err
	}
	st := nodeStatus{Status: s}
	// The admin client decodes the actors' snapshot as plain JSON.
	if s.Actors != nil {
		b, err := json.Marshal(s.Actors)
		if err != nil {
			return nodeStatus{}, err
		}
		var as actors.Status
		if err := json.Unmarshal(b, &as); err != nil {
			return nodeStatus{}, fmt.Errorf("%s: status: actors: %w", n.id, err)
		}
		st.Sessions = as.Sessions
	}
	return st, nil
}

// waitServing waits until n answers 200 on /v1/health, and makes its admin
// client.
func (n *demoNode) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, demoNodeStart)
	defer cancel()
	for {
		if !n.running() {
			return n.exitErr()
		}
		if code, _, err := n.health(ctx); err == nil && code == node.HealthServing {
			if n.admin == nil {
				c, err := node.NewAdminClient(n.cfg)
				if err != nil {
					return err
				}
				n.admin = c
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s did not serve within %s; the end of %s:\n%s", n.id, demoNodeStart, n.logPath, launch.Tail(n.logPath, 15))
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// demoCluster is the demo's three node processes.
type demoCluster struct {
	exe   string
	nodes []*demoNode
}

// newDemoCluster writes the configs of n nodes under dir: the first
// bootstraps the cluster, the others join it with a join token each.
func newDemoCluster(exe, dir string, n int, callbackURL, handlerKey string) (*demoCluster, error) {
	addrs, err := freeLoopbackAddrs(2 * n)
	if err != nil {
		return nil, err
	}
	c := &demoCluster{exe: exe}
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		p := demoNodeParams{
			id: id, dataDir: filepath.Join(dir, id), raftAddr: addrs[2*i], adminAddr: addrs[2*i+1],
			callbackURL: callbackURL, handlerKey: handlerKey, platformKey: filepath.Join(dir, "sim-platform.key"),
		}
		if i > 0 {
			p.joinTokenFile = filepath.Join(dir, id+".join-token")
		}
		confPath := filepath.Join(dir, id+".yaml")
		if err := os.WriteFile(confPath, []byte(demoNodeConfig(p)), 0o600); err != nil {
			return nil, err
		}
		cfg, err := node.LoadConfig(confPath)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, &demoNode{
			id: id, confPath: confPath, cfg: cfg, logPath: filepath.Join(dir, id+".log"), tokenPath: p.joinTokenFile,
			http: &http.Client{Timeout: demoCallTimeout},
		})
	}
	return c, nil
}

// node returns the node named id, or nil.
func (c *demoCluster) node(id string) *demoNode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// bootstrap starts the first node, which bootstraps the cluster, and
// waits for it to serve.
func (c *demoCluster) bootstrap(ctx context.Context) error {
	n := c.nodes[0]
	if err := n.start(c.exe); err != nil {
		return err
	}
	return n.waitServing(ctx)
}

// join mints a join token for n on the first node, starts n (its config
// names the token file, which it uses on its first start) and waits for it
// to serve.
func (c *demoCluster) join(ctx context.Context, n *demoNode) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	t, err := c.nodes[0].admin.JoinToken(cctx, 10*time.Minute)
	cancel()
	if err != nil {
		return fmt.Errorf("join token for %s: %w", n.id, err)
	}
	// The token is a secret until it is used: 0600 in the demo's 0700
	// directory, and gone once the node has joined or failed to.
	if err := os.WriteFile(n.tokenPath, []byte(t.Token+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(n.tokenPath)
	if err := n.start(c.exe); err != nil {
		return err
	}
	return n.waitServing(ctx)
}

// close stops every running node, all at once, each within demoNodeStop.
func (c *demoCluster) close() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(n.stop)
	}
	wg.Wait()
}

// freeLoopbackAddrs returns n distinct loopback addresses whose ports were
// free a moment ago: raft needs concrete addresses, and the admin API's
// stay the same across a node's restart. The listeners stay open until all
// n are chosen, so that no port is handed out twice.
func freeLoopbackAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
