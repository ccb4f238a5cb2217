// Package clustertest runs clusters of cluster.Cluster nodes in one process,
// for tests: N nodes on raft's in-memory transport with in-memory storage,
// a fake clock for the owner-timeout watcher, and partitions, heals, stops
// and restarts.
//
// Raft itself runs on real time (elections, heartbeats), so tests wait for
// it with bounded polling (Eventually); the cluster's own timers (the owner
// timeout) run on the Harness's clock.Fake, which the test advances.
package clustertest
