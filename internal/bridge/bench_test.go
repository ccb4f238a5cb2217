package bridge

import (
	"context"
	"io"
	"net"
	"testing"
)

// BenchmarkRoundTrip compares a 1 KiB request and answer on one
// connection made directly with one through the egress proxy (unix socket
// in front, TCP behind), as a node's raft and signing traffic crosses the
// bridge. Compare the two in one run: `go test -run '^$' -bench RoundTrip
// ./internal/bridge`.
func BenchmarkRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1024)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	run := func(b *testing.B, c net.Conn) {
		defer c.Close()
		msg, answer := make([]byte, 1024), make([]byte, 1024)
		b.SetBytes(2 * 1024)
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, answer); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		run(b, c)
	})
	b.Run("proxy", func(b *testing.B) {
		a := Addr{Kind: Unix, Path: b.TempDir() + "/egress.sock"}
		pln, err := a.Listen()
		if err != nil {
			b.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.Allow = []string{ln.Addr().String()}
		done := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		go func() { Proxy(ctx, pln, cfg); close(done) }()
		defer func() { cancel(); <-done }()
		c, err := Net{Egress: &a}.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		run(b, c)
	})
}
