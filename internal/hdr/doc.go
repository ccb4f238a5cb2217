// Package hdr is the arithmetic `coterie bench` and the status console do
// on the nodes' HDR histograms of their signing stages (node.StagesReport):
// Sub takes what a node recorded during an interval from its cumulative
// histograms before and after, and Merge adds up every node's.
//
// Both are exact, count by count, and so need the histograms to share one
// configuration (range and significant figures); they refuse histograms
// that do not, with ErrMismatch. The snapshots must be whole, as
// hdrhistogram's Export returns them or node.StagesReport decodes them.
//
// Sub and Merge are pure: they do not modify their arguments, and are
// safe for concurrent use.
package hdr
