// Package report holds what a `coterie bench` or `coterie drill` run
// measured (Run), and writes it as JSON, as a table for the terminal and
// as a self-contained HTML report with plots that opens offline.
//
// Writers. WriteJSON and ReadJSON save a Run and read it back, so that a
// report can be rendered again from a saved run. WriteTable prints the
// figures compactly for a terminal. WriteHTML writes one HTML page with the
// same figures in tables beside plots drawn by gonum.org/v1/plot as inline
// SVG: latency, throughput and the presignature pool over time with each
// drill fault marked, CPU per signature, failover by fault kind and the
// find-max search. The table and the page share one set of tables, so they
// cannot disagree. Sections a run has nothing for are left out.
//
// Guarantees. The page loads nothing: no script, style sheet, font or
// image from anywhere; its only URLs are the SVG namespace names, which
// are never fetched. Every string taken from a Run (request ids in
// violations, fault kinds, process names, errors) is escaped, by
// html/template on the page and by vgsvg in the plots. A plot draws at
// most a few thousand points (every k-th, and the extremes of each run of
// points), so a run of 100k samples still makes a page of some hundred
// kilobytes.
//
// Concurrency. The writers keep no state; they may run concurrently on
// different writers, and only read the Run.
package report
