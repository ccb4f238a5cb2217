// Package report holds what a `coterie bench` or `coterie drill` run
// measured (Run), and writes it as JSON, as a table for the terminal and
// as a self-contained HTML report with plots that opens offline.
package report
