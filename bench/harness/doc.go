// Package harness carries out `coterie bench` and `coterie drill` on a local
// cluster that it launches (bench/launch), and returns what they measured
// as a report.Run.
//
// Duties. Run starts the cluster (workspace, nodes, and the reference
// callback handler running load.Policy), pairs the API users and waits for
// warm pools; measures the library alone (mpcbench) while the cluster is
// idle; then drives the load (bench/load) while it samples the pool depth
// and, for a drill, injects one fault per round (Fault). After the load it
// waits for the pools to refill, so that the CPU time it charges per
// signature includes the presignatures the load used, reads each node's
// stage histograms and each process's CPU time, and runs the invariant
// checker (bench/check) on records read from outside the nodes.
//
// Interruption. When ctx ends (Ctrl-C), Run stops the load, still
// collects and checks what there is, with its own bounded context, stops
// every process it started, and returns the partial report with
// Interrupted set, and ctx's error.
//
// Bounds. Every wait is bounded: the cluster's by launch.Config, the
// load's by load.Config, a round's by Config.RoundTimeout, the collection's
// by Config.CollectTimeout.
package harness
