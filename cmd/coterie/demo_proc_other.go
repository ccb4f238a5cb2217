//go:build !linux

package main

import "syscall"

// demoProcAttr leaves a node process in the demo's process group: a
// Ctrl-C at the terminal drains the nodes as well as stopping the demo.
// Only Linux can tie a child's life to its parent's (Pdeathsig).
func demoProcAttr() *syscall.SysProcAttr { return nil }
