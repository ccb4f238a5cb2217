package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// stopTimeout bounds the wait for sessions in flight when the node stops;
// the rest resume at the next start.
const stopTimeout = 10 * time.Second

// actorServer serves the users with the actor system: one workspace
// connection and one callback client per user.
type actorServer struct {
	sys *actors.System
	cb  callback.Config // the users' callback settings, without Logger

	mu       sync.Mutex
	clients  []*client.Client
	deciders []*callback.Client
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
	acfg.Logger = n.log.With("component", "actors")
	acfg.Clock = n.clock
	acfg.Metrics = m
	acfg.MaxSessions = n.cfg.Sessions.Capacity
	acfg.PresignWorkers = n.cfg.Presign.Workers
	acfg.Pool.MinDepth = n.cfg.Presign.TargetDepth
	acfg.Pool.MaxDepth = n.cfg.Presign.MaxDepth
	if n.cfg.TuneActors != nil {
		n.cfg.TuneActors(&acfg)
	}
	sys, err := actors.New(acfg)
	if err != nil {
		return nil, err
	}
	if err := sys.Start(context.Background()); err != nil {
		return nil, err
	}
	return &actorServer{sys: sys, cb: cb}, nil
}

// callbackConfig builds the callback client settings every user shares:
// the handler from the config and the cluster's signing key.
func (n *Node) callbackConfig() (callback.Config, error) {
	cb := callback.DefaultConfig()
	cb.Timeout = n.cfg.Callback.Timeout
	cb.MaxAnswerAge = n.cfg.Callback.MaxAnswerAge
	cb.AllowAnswersWithoutIAT = n.cfg.Callback.AllowAnswersWithoutIAT
	cb.RequireRequestTokenHash = n.cfg.Callback.RequireRequestTokenHash
	cb.Retry.MaxAttempts = n.cfg.Callback.RetryAttempts
	cb.Retry.Initial = n.cfg.Callback.RetryInterval
	cb.Retry.Max = n.cfg.Callback.RetryInterval
	cb.Retry.Multiplier = 1
	cb.Logger = n.log.With("component", "callback")
	cb.Clock = n.clock
	if n.cfg.Callback.URL == "" {
		n.log.Info("no callback handler configured: every request is approved automatically")
		return cb, cb.Validate()
	}
	cb.URL = n.cfg.Callback.URL
	pem, err := os.ReadFile(n.cfg.Callback.HandlerPublicKey)
	if err != nil {
		return cb, fmt.Errorf("node: callback.handler_public_key: %w", err)
	}
	if cb.HandlerKey, err = callback.ParsePublicKeyPEM(pem); err != nil {
		return cb, fmt.Errorf("node: callback.handler_public_key: %w", err)
	}
	if n.cfg.Callback.CAFile != "" {
		ca, err := os.ReadFile(n.cfg.Callback.CAFile)
		if err != nil {
			return cb, fmt.Errorf("node: callback.ca_file: %w", err)
		}
		cb.RootCAs = x509.NewCertPool()
		if !cb.RootCAs.AppendCertsFromPEM(ca) {
			return cb, fmt.Errorf("%w: callback.ca_file holds no PEM certificate", ErrInvalidConfig)
		}
	}
	n.mu.Lock()
	cb.SigningKey = n.callbackKey
	n.mu.Unlock()
	return cb, cb.Validate()
}

func (a *actorServer) add(u *User) error {
	ws, err := client.Dial(u.Credentials)
	if err != nil {
		return err
	}
	dec, err := callback.New(a.cb)
	if err != nil {
		ws.Close()
		return err
	}
	au := actors.User{
		ID: u.Info.ID, Workspace: ws, Decider: dec, Retry: a.cb.Retry,
		SigningKey: u.SigningKey, ShareRecordID: u.Info.ShareRecord,
		ApprovalRecordID: u.Info.ApprovalRecord,
	}
	if err := a.sys.AddUser(au); err != nil {
		ws.Close()
		dec.Close()
		return err
	}
	a.mu.Lock()
	a.clients = append(a.clients, ws)
	a.deciders = append(a.deciders, dec)
	a.mu.Unlock()
	return nil
}

func (a *actorServer) status() any {
	st, err := a.sys.Status()
	if err != nil {
		return nil
	}
	return st
}

func (a *actorServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	err := a.sys.Stop(ctx)
	if errors.Is(err, actors.ErrStopTimeout) {
		err = nil // they resume at the next start
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.clients {
		_ = c.Close()
	}
	for _, d := range a.deciders {
		d.Close()
	}
	a.clients, a.deciders = nil, nil
	return err
}
