package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/coterie-mpc/coterie/node"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// ErrAttached is returned by the calls that act on a node's process (Kill,
// StopNode, SigStop, SigCont, Restart) of a cluster that Attach joined:
// its processes are not this launcher's.
var ErrAttached = errors.New("launch: attached to a running cluster: its processes are not this launcher's")

// Attach reads a cluster that already runs: its nodes (by their config
// files, which name each node's admin address and the data directory that
// holds its admin token) and its workspace (by the workspace simulator's
// data directory). callbackLog, if not empty, is the log of the callback
// handler the nodes use. Of cfg it uses the timeouts, the clock and the
// logger.
//
// It only reads, and fails, with a message that says what to fix, unless
// every node serves and is a voter of one cluster, the workspace answers,
// and at least one API user is paired on every node; those users are the
// Cluster's Users. The returned Cluster cannot act on processes
// (ErrAttached) and has no links; its Stop closes its clients only.
func Attach(ctx context.Context, cfg Config, nodeConfigs []string, workspaceDir, callbackLog string) (*Cluster, error) {
	if len(nodeConfigs) == 0 || workspaceDir == "" {
		return nil, fmt.Errorf("%w: attach needs node configs and the workspace's data directory", ErrConfig)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{cfg: cfg, log: log, attached: true, WorkspaceDir: workspaceDir, CallbackLog: callbackLog}
	for _, path := range nodeConfigs {
		nc, err := node.LoadConfig(path)
		if err != nil {
			return nil, fmt.Errorf("launch: attach: node config %s: %w", path, err)
		}
		ac, err := node.NewAdminClient(nc)
		if err != nil {
			return nil, fmt.Errorf("launch: attach: node %s (%s): %w", nc.NodeID, path, err)
		}
		c.Nodes = append(c.Nodes, &Node{ID: nc.NodeID, Config: nc, ConfigPath: path, Admin: ac, attached: true})
	}
	if err := c.attachCheck(ctx); err != nil {
		return nil, fmt.Errorf("launch: attach: %w", err)
	}
	ws, err := client.DialAdmin(workspaceDir)
	if err != nil {
		return nil, fmt.Errorf("launch: attach: workspace: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
	defer cancel()
	if err := ws.WaitReady(wctx); err != nil {
		ws.Close()
		return nil, fmt.Errorf("launch: attach: the workspace at %s does not answer: %w", workspaceDir, err)
	}
	c.Workspace = ws
	return c, nil
}

// attachCheck checks that every node serves as a voter of one cluster and
// serves the same paired users, and takes those users.
func (c *Cluster) attachCheck(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	var users []string
	for i, n := range c.Nodes {
		if !n.Admin.Healthy(ctx) {
			return fmt.Errorf("node %s at %s does not serve (is it running, and a member with a leader?)", n.ID, n.Config.Admin.Listen)
		}
		view, err := n.Admin.Members(ctx)
		if err != nil {
			return fmt.Errorf("node %s's members: %w", n.ID, err)
		}
		for _, m := range c.Nodes {
			k := slices.IndexFunc(view.Members, func(v node.MemberView) bool { return v.ID == m.ID })
			if k < 0 || (view.Members[k].Role != node.RoleVoter && view.Members[k].Role != node.RoleLeader) {
				return fmt.Errorf("node %s does not count %s as a voter: the configs are not of one cluster, or it has not joined yet", n.ID, m.ID)
			}
		}
		st, err := n.Admin.Status(ctx)
		if err != nil {
			return fmt.Errorf("node %s's status: %w", n.ID, err)
		}
		if i == 0 {
			users = st.Users
		} else if !slices.Equal(users, st.Users) {
			return fmt.Errorf("node %s serves users %v, node %s %v: wait until pairing has reached every node", n.ID, st.Users, c.Nodes[0].ID, users)
		}
	}
	if len(users) == 0 {
		return errors.New("no API user is paired: pair one first (coterie node pair)")
	}
	for _, u := range users {
		// Status names them workspace/user.
		c.Users = append(c.Users, u[strings.LastIndexByte(u, '/')+1:])
	}
	return nil
}
