package main

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/bench/load"
)

// TestProgressQuietOffTerminal: off a terminal, spinners and bars draw
// nothing, and spin hands back the work's error.
func TestProgressQuietOffTerminal(t *testing.T) {
	var out bytes.Buffer
	want := errors.New("refused")
	if err := spin(&out, "waiting", func() error { return want }); err != want {
		t.Fatalf("spin returned %v, want the work's error", err)
	}
	p, update := loadProgress(&out, time.Second)
	update(load.Progress{Elapsed: 500 * time.Millisecond, Submitted: 3, Finished: 2, Open: 1})
	update(load.Progress{Elapsed: 2 * time.Second})
	p.done()
	if out.Len() != 0 {
		t.Fatalf("drew %q off a terminal", out.String())
	}
}
