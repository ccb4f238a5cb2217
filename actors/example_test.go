package actors_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// This is how the node wires the actors: the cluster, the keyring and an
// MPC engine go into the Config, the metrics onto the node's registry, and
// each paired API user is added with its workspace connection, its
// callback client and the ids of its sealed key records.
func Example() {
	var (
		cl    *cluster.Cluster       // cluster.New(...), leader elected
		kr    *keyring.Keyring       // opened from the node's enclave
		creds *client.Credentials    // from the user's sealed record
		key   *protocol.WsSigningKey // the user's public signing key
		reg   = prometheus.NewRegistry()
		log   = slog.Default()
	)
	if cl == nil {
		return // the example shows the calls; it has no cluster to run on
	}
	metrics, err := actors.NewMetrics(reg)
	if err != nil {
		log.Error("metrics", "err", err)
		return
	}
	engine, _ := mpc.New(mpc.DefaultConfig())
	cfg := actors.DefaultConfig()
	cfg.Cluster, cfg.Cipher, cfg.Engine, cfg.Logger, cfg.Metrics = cl, kr, engine, log, metrics
	sys, err := actors.New(cfg)
	if err != nil {
		log.Error("actors", "err", err)
		return
	}
	ctx := context.Background()
	if err := sys.Start(ctx); err != nil {
		return
	}
	ws, _ := client.Dial(creds)
	cb, _ := callback.New(callback.DefaultConfig()) // no handler: approves by itself
	_ = sys.AddUser(actors.User{
		ID: creds.UserID, Workspace: ws, Decider: cb, Retry: callback.DefaultBackoff(),
		SigningKey: key, ShareRecordID: "share/" + creds.UserID, ApprovalRecordID: "approval/" + creds.UserID,
	})
	status, _ := sys.Status() // for /v1/status
	_ = status
	stop, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = sys.Stop(stop) // then close ws and cb
}
