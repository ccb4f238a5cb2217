package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// stopTimeout bounds the wait for sessions in flight when the node stops;
// the rest resume at the next start.
const stopTimeout = 10 * time.Second

// actorServer serves the users with the actor system: one workspace
// connection per user, and the router that picks each user's callback
// handler.
type actorServer struct {
	sys      *actors.System
	metrics  *actors.Metrics  // those registered on /metrics, and the stage histograms
	retry    callback.Backoff // the callback retry budget every user shares
	handlers *handlerRouter
	dial     []grpc.DialOption // workspace.routes

	mu      sync.Mutex
	clients []*client.Client
}

var _ userServer = (*actorServer)(nil)

// newUserServer builds and starts the actor system.
func (n *Node) newUserServer() (userServer, error) {
	cb, err := n.callbackConfig()
	if err != nil {
		return nil, err
	}
	m, err := actors.NewMetrics(n.metrics.registry)
	if err != nil {
		return nil, err
	}
	acfg := actors.DefaultConfig()
	acfg.Cluster = n.cluster
	acfg.Cipher = n.kr
	acfg.Engine = n.engine
	acfg.Logger = n.componentLogger("actors")
	acfg.Clock = n.clock
	acfg.Metrics = m
	// An invariant break halts the actors' signing; /v1/health reports it.
	acfg.OnHalt = n.stopSigning
	acfg.MaxSessions = n.cfg.Sessions.Capacity
	acfg.PresignWorkers = n.cfg.Presign.Workers
	acfg.Pool.MinDepth = n.cfg.Presign.TargetDepth
	acfg.Pool.MaxDepth = n.cfg.Presign.MaxDepth
	// Cut off from a user's workspace, the node hands back its requests of
	// the user after as long as the leader lets a silent owner keep them.
	acfg.WorkspaceTimeout = n.cfg.OwnerTimeout
	if n.cfg.TuneActors != nil {
		n.cfg.TuneActors(&acfg)
	}
	handlers, err := newHandlerRouter(cb, n.cluster.FSM())
	if err != nil {
		return nil, err
	}
	sys, err := actors.New(acfg)
	if err != nil {
		handlers.Close()
		return nil, err
	}
	if err := sys.Start(context.Background()); err != nil {
		handlers.Close()
		return nil, err
	}
	return &actorServer{sys: sys, metrics: m, retry: cb.Retry, handlers: handlers, dial: n.cfg.Workspace.dialer(n.cfg.Network.net())}, nil
}

// callbackConfig builds the callback client settings every user shares:
// the cluster's handler as the config names it, the CA file, the bounds
// and freshness rules, and the cluster's signing key. The API users' own
// handlers are reached with the same settings (handlerRouter), so the CA
// file and the signing key apply whether or not the config names a
// handler.
func (n *Node) callbackConfig() (callback.Config, error) {
	cb := n.cfg.Callback.clientConfig()
	cb.Logger = n.componentLogger("callback")
	cb.Clock = n.clock
	if nw := n.cfg.Network.net(); nw.Egress != nil {
		cb.Dial = nw.DialContext
	}
	var err error
	if n.cfg.Callback.CAFile != "" {
		if cb.RootCAs, err = loadCAFile(n.cfg.Callback.CAFile); err != nil {
			return cb, fmt.Errorf("node: callback.ca_file: %w", err)
		}
	}
	n.mu.Lock()
	cb.SigningKey = n.callbackKey
	n.mu.Unlock()
	if n.cfg.Callback.URL == "" {
		n.log.Info("no callback handler configured: requests of users without a handler of their own are approved automatically")
		return cb, cb.Validate()
	}
	cb.URL = n.cfg.Callback.URL
	if cb.HandlerKey, err = loadHandlerKey(n.cfg.Callback.HandlerPublicKey); err != nil {
		return cb, fmt.Errorf("node: callback.handler_public_key: %w", err)
	}
	return cb, cb.Validate()
}

func (a *actorServer) add(u *User) error {
	ws, err := client.Dial(u.Credentials, a.dial...)
	if err != nil {
		return err
	}
	au := actors.User{
		ID: u.Info.ID, Key: u.RecordID, Workspace: ws, Decider: a.handlers.decider(u.RecordID), Retry: a.retry,
		SigningKey: u.SigningKey, ShareRecordID: u.Info.ShareRecord,
		ApprovalRecordID: u.Info.ApprovalRecord,
	}
	if err := a.sys.AddUser(au); err != nil {
		ws.Close()
		return err
	}
	a.mu.Lock()
	a.clients = append(a.clients, ws)
	a.mu.Unlock()
	return nil
}

func (a *actorServer) halt(reason string) { a.sys.Halt(reason) }

func (a *actorServer) status() any {
	st, err := a.sys.Status()
	if err != nil {
		return nil
	}
	return st
}

func (a *actorServer) stages() map[string]*hdrhistogram.Snapshot { return a.metrics.StageSnapshots() }

func (a *actorServer) stop(ctx context.Context) error {
	err := a.sys.Stop(ctx)
	if errors.Is(err, actors.ErrStopTimeout) {
		err = nil // they resume at the next start, or a drain hands them back
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.clients {
		_ = c.Close()
	}
	a.handlers.Close()
	a.clients = nil
	return err
}
