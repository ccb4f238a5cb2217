package bridge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/enclave/nitro/vsock"
)

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind Kind
		out  string
	}{
		{"127.0.0.1:7000", TCP, "127.0.0.1:7000"},
		{"[::1]:0", TCP, "[::1]:0"},
		{"kms.eu-west-1.amazonaws.com:443", TCP, "kms.eu-west-1.amazonaws.com:443"},
		{"unix:/run/coterie/raft.sock", Unix, "unix:/run/coterie/raft.sock"},
		{"unix:///run/raft.sock", Unix, "unix:/run/raft.sock"},
		{"vsock://3:8000", VSock, "vsock://3:8000"},
		{"vsock://:7000", VSock, "vsock://:7000"},
	} {
		a, err := ParseAddr(tc.in)
		if err != nil {
			t.Errorf("ParseAddr(%q): %v", tc.in, err)
			continue
		}
		if a.Kind != tc.kind || a.String() != tc.out {
			t.Errorf("ParseAddr(%q) = %v %q, want %v %q", tc.in, a.Kind, a, tc.kind, tc.out)
		}
	}
	for _, bad := range []string{"", "7000", "host", "unix:", "vsock://3", "vsock://x:1", "vsock://4294967295:1",
		"vsock://3:99999999999", "tcp://1.2.3.4:5", "http://proxy:3128", "host:port", "host:70000"} {
		if _, err := ParseAddr(bad); !errors.Is(err, ErrAddr) {
			t.Errorf("ParseAddr(%q) = %v, want ErrAddr", bad, err)
		}
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:1", "unix:/a", "vsock://3:8000", "vsock://:1", "[::1]:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s)
		if err != nil {
			return
		}
		b, err := ParseAddr(a.String())
		if err != nil || b != a {
			t.Fatalf("ParseAddr(%q) = %+v, but its String %q parses as %+v, %v", s, a, a.String(), b, err)
		}
	})
}

// echo serves on a loopback TCP port: it answers each connection with
// "echo:" and everything it read, once the client half-closes. It counts
// the connections it accepted.
type echo struct {
	ln       net.Listener
	accepted atomic.Int32
}

func newEcho(t *testing.T) *echo {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.accepted.Add(1)
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(append([]byte("echo:"), b...))
			}()
		}
	}()
	return e
}

func (e *echo) addr() string { return e.ln.Addr().String() }

// startProxy serves a proxy on a unix socket in a test directory and
// returns the Net that dials through it.
func startProxy(t *testing.T, cfg Config) Net {
	t.Helper()
	a := Addr{Kind: Unix, Path: filepath.Join(t.TempDir(), "egress.sock")}
	ln, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Proxy(ctx, ln, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Proxy returned %v, want context.Canceled", err)
		}
	})
	return Net{Egress: &a}
}

func testConfig(allow ...string) Config {
	c := DefaultConfig()
	c.Allow = allow
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// roundTrip sends msg on c, half-closes, and returns the whole answer.
func roundTrip(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	defer c.Close()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProxyAllowed: an allowed destination is reached through the proxy,
// and a half close crosses it, so the destination's answer comes back.
func TestProxyAllowed(t *testing.T) {
	e := newEcho(t)
	n := startProxy(t, testConfig(e.addr()))
	c, err := n.DialContext(ctxT(t), "tcp", e.addr())
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, "hello"); got != "echo:hello" {
		t.Fatalf("answer %q", got)
	}
}

// TestProxyRefusals: a destination not allowed gets 403 and is never
// dialled; one that refuses shows as ECONNREFUSED to the dialer; a
// request that is not CONNECT, or not HTTP, is answered with an error.
func TestProxyRefusals(t *testing.T) {
	e := newEcho(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := closed.Addr().String()
	closed.Close()
	n := startProxy(t, testConfig(refusing))

	_, err = n.DialContext(ctxT(t), "tcp", e.addr())
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("dial of a destination not allowed = %v, want a 403", err)
	}
	if e.accepted.Load() != 0 {
		t.Errorf("the proxy dialled a destination it does not allow")
	}
	_, err = n.DialContext(ctxT(t), "tcp", refusing)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial of a refusing destination = %v, want ECONNREFUSED", err)
	}
	if _, err := n.DialContext(ctxT(t), "udp", refusing); err == nil {
		t.Errorf("a udp dial through the proxy succeeded")
	}
	for req, want := range map[string]string{
		"GET http://" + e.addr() + "/ HTTP/1.1\r\nHost: x\r\n\r\n":           "405",
		"\x16\x03\x01 not http\r\n\r\n":                                      "400",
		"CONNECT " + strings.Repeat("a", maxRequest) + ":1 HTTP/1.1\r\n\r\n": "400",
	} {
		c, err := n.Egress.Dial(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, req)
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.Contains(line, want) {
			t.Errorf("answer to %.20q = %q, want %s", req, line, want)
		}
	}
}

// TestProxyBound: beyond MaxConns a new connection gets a 503, and is
// served again once one ends.
func TestProxyBound(t *testing.T) {
	e := newEcho(t)
	cfg := testConfig(e.addr())
	cfg.MaxConns = 1
	a := Addr{Kind: Unix, Path: filepath.Join(t.TempDir(), "p.sock")}
	ln, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{}, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Proxy(ctx, &signalListener{Listener: ln, closed: closed}, cfg) }()
	defer func() { cancel(); <-done }()
	n := Net{Egress: &a}
	first, err := n.DialContext(ctxT(t), "tcp", e.addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.DialContext(ctxT(t), "tcp", e.addr()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a second tunnel beyond MaxConns 1: %v, want a 503", err)
	}
	<-closed // the refused one
	if got := roundTrip(t, first, "a"); got != "echo:a" {
		t.Fatalf("answer %q", got)
	}
	// The proxy frees the first tunnel's slot before it closes its end.
	select {
	case <-closed:
	case <-ctxT(t).Done():
		t.Fatal("the proxy never closed the first tunnel")
	}
	c, err := n.DialContext(ctxT(t), "tcp", e.addr())
	if err != nil {
		t.Fatalf("no tunnel after the first ended: %v", err)
	}
	if got := roundTrip(t, c, "b"); got != "echo:b" {
		t.Fatalf("answer %q", got)
	}
}

// signalListener's conns say on closed when the server closes them.
type signalListener struct {
	net.Listener
	closed chan struct{}
}

func (l *signalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &signalConn{UnixConn: c.(*net.UnixConn), closed: l.closed}, nil
}

type signalConn struct {
	*net.UnixConn
	once   sync.Once
	closed chan struct{}
}

func (c *signalConn) Close() error {
	c.once.Do(func() { c.closed <- struct{}{} })
	return c.UnixConn.Close()
}

// TestProxyStopClosesTunnels: when the proxy's context ends, its open
// tunnels close.
func TestProxyStopClosesTunnels(t *testing.T) {
	e := newEcho(t)
	a := Addr{Kind: Unix, Path: filepath.Join(t.TempDir(), "p.sock")}
	ln, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Proxy(ctx, ln, testConfig(e.addr())) }()
	c, err := Net{Egress: &a}.DialContext(ctxT(t), "tcp", e.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Proxy = %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a tunnel stayed open after the proxy stopped")
	}
}

// TestForward: a TCP listener forwarded to a unix socket reaches the
// server behind it; a forward whose target is down closes the connection.
func TestForward(t *testing.T) {
	dir := t.TempDir()
	target := Addr{Kind: Unix, Path: filepath.Join(dir, "node.sock")}
	tln, err := target.Listen()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(append([]byte("node:"), b...))
			}()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Forward(ctx, ln, target, DefaultConfig()) }()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := roundTrip(t, dial(), "raft"); got != "node:raft" {
		t.Fatalf("answer %q", got)
	}
	tln.Close()
	c := dial()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("answer %q from a forward whose target is down", b)
	}
	c.Close()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Forward = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.Allow = []string{"no-port"}
	c.MaxConns = 0
	c.Logger = nil
	err := c.Validate()
	for _, want := range []string{"no-port", "MaxConns", "Logger"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to name %s", err, want)
		}
	}
}

// TestListenStaleSocket: a unix socket whose listener is gone without
// removing it (a killed process) is replaced; a live one is not.
func TestListenStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	a := Addr{Kind: Unix, Path: path}
	if _, err := a.Listen(); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Listen on a live socket = %v, want in use", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	again, err := a.Listen()
	if err != nil {
		t.Fatalf("Listen on a stale socket: %v", err)
	}
	again.Close()
}

// TestEgressDownIsNotRefused: when the egress proxy itself refuses (its
// socket is left, its process gone), the error is ErrEgress and does not
// read as the destination's refusal, which the cluster would take for a
// node that is not running.
func TestEgressDownIsNotRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "egress.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	n := Net{Egress: &Addr{Kind: Unix, Path: path}}
	_, err = n.DialContext(ctxT(t), "tcp", "10.0.0.9:7000")
	if !errors.Is(err, ErrEgress) || errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial through a dead proxy = %v, want ErrEgress and not ECONNREFUSED", err)
	}
}

// TestEgressAnswerBounded: a proxy that answers with an endless header
// gets an error once maxRequest bytes are read, not the enclave's memory.
func TestEgressAnswerBounded(t *testing.T) {
	a := Addr{Kind: Unix, Path: filepath.Join(t.TempDir(), "evil.sock")}
	ln, err := a.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := []byte("X-Filler: " + strings.Repeat("x", 1000) + "\r\n")
		for range 64 << 10 { // 64 MiB at most
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	}()
	_, err = Net{Egress: &a}.DialContext(ctxT(t), "tcp", "10.0.0.9:7000")
	if !errors.Is(err, ErrEgress) {
		t.Fatalf("dial through a proxy with an endless answer = %v, want ErrEgress", err)
	}
}

// TestProxyHalfClose: a tunnel whose client has finished sending closes
// HalfCloseTimeout later even when the destination never answers nor
// closes, so it holds no slot for ever.
func TestProxyHalfClose(t *testing.T) {
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := mute.Accept()
		if err == nil {
			held <- c // read nothing, answer nothing, close nothing
		}
	}()
	cfg := testConfig(mute.Addr().String())
	cfg.HalfCloseTimeout = 100 * time.Millisecond
	n := startProxy(t, cfg)
	c, err := n.DialContext(ctxT(t), "tcp", mute.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a half-closed tunnel = %v, want it closed by the proxy", err)
	}
	(<-held).Close()
}

// fakeListener hands out the conns given, then fails.
type fakeListener struct {
	net.Listener
	conns chan net.Conn
}

func (l *fakeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}

// fromConn is a conn that says it comes from remote.
type fromConn struct {
	net.Conn
	remote net.Addr
}

func (c fromConn) RemoteAddr() net.Addr { return c.remote }

// TestOnlyFrom: a vsock connection from another context id is closed and
// never accepted; one from the enclave, and any unix or TCP one, is.
func TestOnlyFrom(t *testing.T) {
	l := &fakeListener{conns: make(chan net.Conn, 3)}
	other, _ := net.Pipe()
	mine, _ := net.Pipe()
	local, _ := net.Pipe()
	l.conns <- fromConn{other, vsock.Addr{CID: 17, Port: 1}}
	l.conns <- fromConn{mine, vsock.Addr{CID: 16, Port: 2}}
	l.conns <- fromConn{local, &net.UnixAddr{Name: "@", Net: "unix"}}
	close(l.conns)
	ln := OnlyFrom(l, 16)
	for _, want := range []net.Conn{mine, local} {
		c, err := ln.Accept()
		if err != nil || c.(fromConn).Conn != want {
			t.Fatalf("Accept = %v, %v", c, err)
		}
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept at the end = %v", err)
	}
	if _, err := other.Write([]byte("x")); err == nil {
		t.Fatal("the connection from another enclave was left open")
	}
}
