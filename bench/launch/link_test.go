package launch

import (
	"bufio"
	"net"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// echoServer answers every line with the same line, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := conn.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip dials addr, sends a line and reads the echo.
func roundTrip(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err = bufio.NewReader(conn).ReadString('\n')
	return err
}

// TestLinkCutHeal checks that a link forwards, refuses connections once
// cut, forwards again on the same address once healed, and that a toxic
// can be added and removed.
func TestLinkCutHeal(t *testing.T) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	l, err := newLink(srv, "echo", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	addr := l.Addr()
	if err := roundTrip(addr); err != nil {
		t.Fatalf("through the link: %v", err)
	}
	name, err := l.AddLatency(Downstream, 10*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(addr); err != nil {
		t.Fatalf("with latency: %v", err)
	}
	if err := l.RemoveToxic(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoveToxic(t.Context(), name); err == nil {
		t.Fatal("removing a removed toxic succeeded")
	}
	l.Cut()
	if err := roundTrip(addr); err == nil {
		t.Fatal("a cut link forwarded")
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	if l.Addr() != addr {
		t.Fatalf("healed on %s, was %s", l.Addr(), addr)
	}
	if err := roundTrip(addr); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

// TestLinkBlackhole checks that a blackholed link accepts connections but
// carries nothing, and carries again once its toxics are reset.
func TestLinkBlackhole(t *testing.T) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	l, err := newLink(srv, "echo", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	if err := l.Blackhole(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", l.Addr(), 2*time.Second)
	if err != nil {
		t.Fatalf("a blackholed link refused a connection: %v", err)
	}
	conn.Close()
	err = roundTrip(l.Addr())
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("through a blackholed link: %v, want a timeout", err)
	}
	l.ResetToxics(t.Context())
	if err := roundTrip(l.Addr()); err != nil {
		t.Fatalf("after the reset: %v", err)
	}
}
