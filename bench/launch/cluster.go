package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/node"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/client"
	"github.com/coterie-mpc/coterie/workspace/store"
)

// pollEvery paces the waits: the processes are watched through their APIs,
// which send no events to wait on.
const pollEvery = 100 * time.Millisecond

// Node is one `coterie node run` process of the cluster.
type Node struct {
	// ID is the node's id, n1 to nN.
	ID string
	// Config is the node's config, as its process reads it.
	Config node.Config
	// ConfigPath is the node's config file.
	ConfigPath string
	// Log is the file its process's output goes to, across restarts.
	Log string
	// Link is the proxy every peer dials to reach this node's raft
	// listener.
	Link *Link
	// WorkspaceLink is the proxy this node dials to reach the workspace
	// (its config routes the workspace's address to it), so that the node
	// alone can be cut off from the workspace.
	WorkspaceLink *Link
	// Admin is the node's admin API client, set once it has served.
	Admin *node.AdminClient

	proc      *Proc
	runs      int
	cpuBefore time.Duration
	attached  bool
}

// Running reports whether the node's process runs; an attached node's
// process is taken to run (its admin API tells whether it serves).
func (n *Node) Running() bool { return n.attached || n.proc.Running() }

// Cluster is a running local cluster. Stop ends it.
type Cluster struct {
	cfg Config
	log *slog.Logger

	// Workspace is the workspace's admin client.
	Workspace *client.Admin
	// WorkspaceAddr is the workspace's address, as its pairing tokens give
	// it; every node reaches it through its own WorkspaceLink.
	WorkspaceAddr string
	// WorkspaceDir is the workspace simulator's data directory.
	WorkspaceDir string
	// Nodes are the cluster's nodes, in start order; Nodes[0] bootstrapped.
	Nodes []*Node
	// Users are the API users Pair paired, by ID.
	Users []string
	// CallbackLog is the callback handler's log (check.ReadCallbackLog
	// reads its decisions); empty when Config.CallbackPolicy is.
	CallbackLog string

	attached bool
	ws       *Proc
	cb       *Proc
	cbListen string
	proxies  *toxiproxy.ApiServer
	addrs    map[string]bool // handed out by freeAddr
}

// Start writes the configs under cfg.Dir, starts the workspace and the
// nodes, and returns once every node serves and is a voter. On an error it
// stops whatever it started.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c = &Cluster{
		cfg: cfg, log: log, WorkspaceDir: filepath.Join(cfg.Dir, "workspace"),
		proxies: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		addrs:   map[string]bool{},
	}
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := c.startWorkspace(ctx); err != nil {
		return nil, err
	}
	if cfg.CallbackPolicy != "" {
		if err := c.prepareCallback(); err != nil {
			return nil, err
		}
	}
	for i := range cfg.Nodes {
		if err := c.addNode(ctx, i); err != nil {
			return nil, err
		}
	}
	if err := c.WaitVoters(ctx, cfg.Nodes); err != nil {
		return nil, err
	}
	if cfg.CallbackPolicy != "" {
		if err := c.startCallback(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// freeAddr returns a loopback address whose port was free a moment ago:
// a process needs a concrete address in its config before it starts. The
// kernel may hand out a port it just handed out, before the process that
// got it has bound it, so it never returns one it returned before.
func (c *Cluster) freeAddr() (string, error) {
	for range maxAddrTries {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		ln.Close()
		if !c.addrs[addr] {
			c.addrs[addr] = true
			return addr, nil
		}
	}
	return "", fmt.Errorf("launch: no new loopback port in %d tries", maxAddrTries)
}

// maxAddrTries bounds freeAddr's draws.
const maxAddrTries = 100

func (c *Cluster) startWorkspace(ctx context.Context) error {
	listen, err := c.freeAddr()
	if err != nil {
		return err
	}
	c.WorkspaceAddr = listen
	c.ws, err = StartProc("workspace", filepath.Join(c.cfg.Dir, "workspace.log"), c.cfg.Binary,
		"workspace", "serve", "--data-dir", c.WorkspaceDir, "--listen", listen,
		"--cloud-cosigners", fmt.Sprint(c.cfg.Cosigners), "--quorum", fmt.Sprint(c.cfg.Quorum), "--log-level", "warn")
	if err != nil {
		return err
	}
	return c.wait(ctx, "the workspace to serve", []*Proc{c.ws}, func(ctx context.Context) bool {
		a, err := client.DialAdmin(c.WorkspaceDir)
		if err != nil {
			return false
		}
		if a.WaitReady(ctx) != nil {
			a.Close()
			return false
		}
		c.Workspace = a
		return true
	})
}

// addNode writes node i's config, behind a proxy of its own and with one
// of its own to the workspace, and starts it: the first node bootstraps,
// the others join with a token minted on it.
func (c *Cluster) addNode(ctx context.Context, i int) error {
	bind, err := c.freeAddr()
	if err != nil {
		return err
	}
	admin, err := c.freeAddr()
	if err != nil {
		return err
	}
	n := &Node{ID: fmt.Sprintf("n%d", i+1)}
	if n.Link, err = newLink(c.proxies, n.ID, bind); err != nil {
		return err
	}
	if n.WorkspaceLink, err = newLink(c.proxies, n.ID+"-workspace", c.WorkspaceAddr); err != nil {
		return err
	}
	n.ConfigPath = filepath.Join(c.cfg.Dir, n.ID+".yaml")
	n.Log = filepath.Join(c.cfg.Dir, n.ID+".log")
	tokenPath := ""
	if i > 0 {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		tok, err := c.Nodes[0].Admin.JoinToken(cctx, c.cfg.StartTimeout)
		cancel()
		if err != nil {
			return fmt.Errorf("launch: join token for %s: %w", n.ID, err)
		}
		// The token is a secret until used: 0600, and removed once the
		// node has joined or failed to.
		tokenPath = filepath.Join(c.cfg.Dir, n.ID+".join-token")
		if err := os.WriteFile(tokenPath, []byte(tok.Token+"\n"), 0o600); err != nil {
			return err
		}
		defer os.Remove(tokenPath)
	}
	conf := nodeConfig(c.cfg, n.ID, bind, n.Link.Addr(), admin, tokenPath) + c.callbackConfig() +
		fmt.Sprintf("workspace:\n  routes:\n    %q: %q\n", c.WorkspaceAddr, n.WorkspaceLink.Addr())
	if err := os.WriteFile(n.ConfigPath, []byte(conf), 0o600); err != nil {
		return err
	}
	if n.Config, err = node.LoadConfig(n.ConfigPath); err != nil {
		return fmt.Errorf("launch: %s config: %w", n.ID, err)
	}
	c.Nodes = append(c.Nodes, n)
	return c.Restart(ctx, i)
}

// nodeConfig is a node's config file. Its raft address is advertised
// through its proxy, so that every peer reaches it through the proxy.
func nodeConfig(cfg Config, id, bind, advertise, admin, tokenPath string) string {
	return fmt.Sprintf(`node_id: %[1]s
mode: development
data_dir: %[2]q
enclave:
  kind: sim
  # The nodes share one simulated machine, so they trust each other's
  # sim attestation.
  sim_platform_key: %[3]q
raft:
  bind: %[4]q
  advertise: %[5]q
  bootstrap: %[6]t
cluster:
  location: "onprem:loopback"
  join_token_file: %[7]q
admin:
  listen: %[8]q
presign:
  target_depth: %[9]d
  max_depth: %[10]d
  workers: 1
owner_timeout: %[11]s
shutdown_grace: 2s
log:
  level: info
`, id, filepath.Join(cfg.Dir, id), filepath.Join(cfg.Dir, "sim-platform.key"), bind, advertise, tokenPath == "",
		tokenPath, admin, cfg.PresignTarget, cfg.PresignTarget+1, cfg.OwnerTimeout)
}

// node returns node i, whose process this launcher controls.
func (c *Cluster) node(i int) (*Node, error) {
	if c.attached {
		return nil, ErrAttached
	}
	if i < 0 || i >= len(c.Nodes) {
		return nil, fmt.Errorf("%w: %d of %d", ErrNoNode, i, len(c.Nodes))
	}
	return c.Nodes[i], nil
}

// Restart starts node i's process (kill or stop it first) and waits until
// it serves.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	if err := c.start(i); err != nil {
		return err
	}
	return c.waitServing(ctx, c.Nodes[i])
}

// RestartAll starts every node whose process does not run, and waits until
// each serves: started one at a time, a node of a cluster that lost its
// quorum would wait for peers that are not started yet.
func (c *Cluster) RestartAll(ctx context.Context) error {
	var started []*Node
	for i, n := range c.Nodes {
		if n.Running() {
			continue
		}
		if err := c.start(i); err != nil {
			return err
		}
		started = append(started, n)
	}
	for _, n := range started {
		if err := c.waitServing(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// start starts node i's process.
func (c *Cluster) start(i int) error {
	n, err := c.node(i)
	if err != nil {
		return err
	}
	if n.Running() {
		return fmt.Errorf("launch: restart %s: it still runs", n.ID)
	}
	if err := n.Link.Heal(); err != nil {
		return err
	}
	if n.proc != nil {
		// The CPU time of the runs before, which Cluster.CPU adds up.
		if d, err := n.proc.CPU(); err == nil {
			n.cpuBefore += d
		}
	}
	n.runs++
	if n.proc, err = StartProc(n.ID, n.Log, c.cfg.Binary, "node", "run", "--config", n.ConfigPath); err != nil {
		return err
	}
	c.log.Info("node started", "node", n.ID, "run", n.runs)
	return nil
}

// waitServing waits until n answers healthy.
func (c *Cluster) waitServing(ctx context.Context, n *Node) error {
	return c.wait(ctx, n.ID+" to serve", []*Proc{n.proc}, func(ctx context.Context) bool {
		if n.Admin == nil {
			// The admin token appears in the data directory once the
			// node has started.
			ac, err := node.NewAdminClient(n.Config)
			if err != nil {
				return false
			}
			n.Admin = ac
		}
		return n.Admin.Healthy(ctx)
	})
}

// Kill ends node i's process with SIGKILL.
func (c *Cluster) Kill(i int) error {
	n, err := c.node(i)
	if err != nil {
		return err
	}
	n.proc.Kill()
	c.gone(n)
	c.log.Info("node killed", "node", n.ID)
	return nil
}

// gone cuts the link of n, whose process has exited: the port of a dead
// process refuses connections, and so must the proxy in front of it, or
// peers would see a listener that accepts and hangs up, as a hung node
// does, and wait out the owner timeout instead of seeing the node gone.
// start heals it.
func (c *Cluster) gone(n *Node) {
	n.Link.Cut()
}

// StopNode asks node i to drain and stop (SIGTERM), and kills it after
// Config.StopTimeout.
func (c *Cluster) StopNode(i int) error {
	n, err := c.node(i)
	if err != nil {
		return err
	}
	stopped := n.proc.Stop(c.cfg.StopTimeout)
	c.gone(n)
	if !stopped {
		return fmt.Errorf("launch: %s did not stop within %s of SIGTERM; killed", n.ID, c.cfg.StopTimeout)
	}
	return nil
}

// SigStop freezes node i's process (SIGSTOP) until SigCont.
func (c *Cluster) SigStop(i int) error { return c.signal(i, syscall.SIGSTOP) }

// SigCont lets node i's process go on after SigStop.
func (c *Cluster) SigCont(i int) error { return c.signal(i, syscall.SIGCONT) }

func (c *Cluster) signal(i int, sig syscall.Signal) error {
	n, err := c.node(i)
	if err != nil {
		return err
	}
	return n.proc.Signal(sig)
}

// Stop ends every process, within Config.StopTimeout each, and the proxies;
// of an attached cluster, it closes the clients only. It may be called
// more than once.
func (c *Cluster) Stop() {
	// An attached cluster's nodes have no process or link here.
	for _, n := range c.Nodes {
		// A frozen node would never see the SIGTERM.
		_ = n.proc.Signal(syscall.SIGCONT)
	}
	done := make(chan struct{})
	for _, n := range c.Nodes {
		go func() { n.proc.Stop(c.cfg.StopTimeout); done <- struct{}{} }()
	}
	for range c.Nodes {
		<-done
	}
	if c.Workspace != nil {
		c.Workspace.Close()
		c.Workspace = nil
	}
	c.ws.Stop(c.cfg.StopTimeout)
	c.cb.Stop(c.cfg.StopTimeout)
	for _, n := range c.Nodes {
		for _, l := range []*Link{n.Link, n.WorkspaceLink} {
			if l != nil {
				l.close()
			}
		}
	}
}

// WaitVoters waits until a serving node counts want voters.
func (c *Cluster) WaitVoters(ctx context.Context, want int) error {
	return c.wait(ctx, fmt.Sprintf("%d voters", want), c.procs(), func(ctx context.Context) bool {
		for _, n := range c.serving(ctx) {
			v, err := n.Admin.Members(ctx)
			if err != nil {
				continue
			}
			voters := 0
			for _, m := range v.Members {
				if m.Role == node.RoleVoter || m.Role == node.RoleLeader {
					voters++
				}
			}
			return voters == want
		}
		return false
	})
}

// Pair creates n API users (signer and approver) in the workspace, pairs
// each through a serving node, and waits until every running node serves
// them all. It returns their IDs, also appended to Users.
func (c *Cluster) Pair(ctx context.Context, n int) ([]string, error) {
	var ids, want []string
	for k := range n {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		created, err := c.Workspace.CreateUser(cctx, &protocol.WsCreateUserRequest{
			Name: fmt.Sprintf("launch-%d", len(c.Users)+k+1), Role: protocol.WsRole_WS_ROLE_BOTH,
		})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("launch: create user: %w", err)
		}
		via := c.serving(ctx)
		if len(via) == 0 {
			return nil, fmt.Errorf("launch: pair: no node serves")
		}
		// Pairing runs MPC key generation: bounded by the start bound,
		// not by one call's.
		pctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
		info, err := via[0].Admin.Pair(pctx, node.PairRequest{Token: created.GetPairingToken()})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("launch: pair through %s: %w", via[0].ID, err)
		}
		ids = append(ids, info.ID)
		want = append(want, info.WorkspaceID+"/"+info.ID)
	}
	c.Users = append(c.Users, ids...)
	err := c.wait(ctx, "every node to serve the paired users", c.procs(), func(ctx context.Context) bool {
		for _, nd := range c.Nodes {
			if !nd.Running() {
				continue
			}
			st, err := nd.Admin.Status(ctx)
			if err != nil {
				return false
			}
			for _, u := range want {
				if !slices.Contains(st.Users, u) {
					return false
				}
			}
		}
		return true
	})
	return ids, err
}

// WaitWarm waits until the cluster-wide presignature pool holds
// Config.PresignTarget presignatures for the key of every paired user.
func (c *Cluster) WaitWarm(ctx context.Context) error {
	return c.wait(ctx, "every presignature pool to be warm", c.procs(), func(ctx context.Context) bool {
		// The pool is in the FSM: any serving replica shows it.
		for _, n := range c.serving(ctx) {
			st, err := n.Admin.Status(ctx)
			if err != nil {
				continue
			}
			if len(st.PoolDepths) < len(c.Users) {
				return false
			}
			for _, d := range st.PoolDepths {
				if d < c.cfg.PresignTarget {
					return false
				}
			}
			return true
		}
		return false
	})
}

// serving returns the running nodes that answer healthy.
func (c *Cluster) serving(ctx context.Context) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Running() && n.Admin != nil && n.Admin.Healthy(ctx) {
			out = append(out, n)
		}
	}
	return out
}

// procs returns the processes that run now: a wait fails early if one of
// them exits while it waits, but not for a node stopped before it began.
func (c *Cluster) procs() []*Proc {
	var out []*Proc
	for _, p := range []*Proc{c.ws, c.cb} {
		if p.Running() {
			out = append(out, p)
		}
	}
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n.proc)
		}
	}
	return out
}

// WaitRequest waits until the workspace's request id of user has a final
// state (signed, approved, rejected, failed or expired) and returns it.
func (c *Cluster) WaitRequest(ctx context.Context, user, id string) (*protocol.WsRequest, error) {
	var final *protocol.WsRequest
	err := c.wait(ctx, "request "+id+" to finish", c.procs(), func(ctx context.Context) bool {
		resp, err := c.Workspace.ListRequests(ctx, &protocol.WsListRequestsRequest{UserId: user})
		if err != nil {
			return false
		}
		for _, r := range resp.GetRequests() {
			if r.GetId() == id && store.Terminal(r.GetState()) {
				final = r
				return true
			}
		}
		return false
	})
	return final, err
}

// wait polls cond, each call bounded by Config.CallTimeout, until it holds,
// for at most Config.StartTimeout. It fails early when a process of watch
// exits, since the cluster then cannot reach the state it waits for, or
// when the caller's context ends.
func (c *Cluster) wait(ctx context.Context, what string, watch []*Proc, cond func(context.Context) bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	for {
		for _, p := range watch {
			if p != nil && !p.Running() {
				return fmt.Errorf("launch: waiting for %s: %w", what, p.ExitErr())
			}
		}
		cctx, ccancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		ok := cond(cctx)
		ccancel()
		if ok {
			return nil
		}
		if err := clock.Sleep(ctx, c.cfg.Clock, pollEvery); err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w after %s waiting for %s", ErrTimeout, c.cfg.StartTimeout, what)
			}
			return err
		}
	}
}

// CPU returns the CPU time each process has spent so far, by name
// (workspace, callback, n1, ...), a node's over all its runs; a process it
// cannot read is left out.
func (c *Cluster) CPU() map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, p := range map[string]*Proc{"workspace": c.ws, "callback": c.cb} {
		if d, err := p.CPU(); err == nil {
			out[name] = d
		}
	}
	for _, n := range c.Nodes {
		if d, err := n.proc.CPU(); err == nil {
			out[n.ID] = n.cpuBefore + d
		}
	}
	return out
}

// PoolDepth returns the cluster-wide available presignatures, summed over
// keys, as a serving node's replica sees them.
func (c *Cluster) PoolDepth(ctx context.Context) (int, error) {
	for _, n := range c.serving(ctx) {
		st, err := n.Admin.Status(ctx)
		if err != nil {
			continue
		}
		total := 0
		for _, d := range st.PoolDepths {
			total += d
		}
		return total, nil
	}
	return 0, fmt.Errorf("launch: pool depth: no node serves")
}
