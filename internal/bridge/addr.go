package bridge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coterie-mpc/coterie/enclave/nitro/vsock"
)

// ErrAddr is returned for an address that is none of the kinds Addr knows.
var ErrAddr = errors.New("bridge: bad address")

// Kind is the transport an Addr names.
type Kind int

// The kinds of address.
const (
	TCP   Kind = iota // host:port
	Unix              // unix:PATH
	VSock             // vsock://CID:PORT
)

// String returns "tcp", "unix" or "vsock".
func (k Kind) String() string {
	switch k {
	case TCP:
		return "tcp"
	case Unix:
		return "unix"
	case VSock:
		return "vsock"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Addr is a listening or dialling address of one of the three kinds.
type Addr struct {
	Kind Kind
	// Path is the TCP host:port or the unix socket's path.
	Path string
	// VSock is the vsock address; its CID is VMADDR_CID_ANY for a listener
	// given as "vsock://:PORT".
	VSock vsock.Addr
}

// vsockAnyCID is VMADDR_CID_ANY.
const vsockAnyCID = ^uint32(0)

// ParseAddr parses "host:port", "unix:PATH" or "vsock://[CID]:PORT".
func ParseAddr(s string) (Addr, error) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(strings.TrimPrefix(s, "unix:"), "//")
		if p == "" {
			return Addr{}, fmt.Errorf("%w: %q names no socket path", ErrAddr, s)
		}
		return Addr{Kind: Unix, Path: p}, nil
	case strings.HasPrefix(s, "vsock://"):
		cid, port, err := net.SplitHostPort(strings.TrimPrefix(s, "vsock://"))
		if err != nil {
			return Addr{}, fmt.Errorf("%w: %q: %v", ErrAddr, s, err)
		}
		a := Addr{Kind: VSock, VSock: vsock.Addr{CID: vsockAnyCID}}
		if cid != "" {
			n, err := strconv.ParseUint(cid, 10, 32)
			if err != nil || n >= uint64(vsockAnyCID) {
				return Addr{}, fmt.Errorf("%w: %q: the CID is not a number below 2^32-1", ErrAddr, s)
			}
			a.VSock.CID = uint32(n)
		}
		n, err := strconv.ParseUint(port, 10, 32)
		if err != nil {
			return Addr{}, fmt.Errorf("%w: %q: the port is not a 32-bit number", ErrAddr, s)
		}
		a.VSock.Port = uint32(n)
		return a, nil
	case strings.Contains(s, "://"):
		return Addr{}, fmt.Errorf("%w: %q: only host:port, unix:PATH and vsock://CID:PORT are known", ErrAddr, s)
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return Addr{}, fmt.Errorf("%w: %q: %v", ErrAddr, s, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return Addr{}, fmt.Errorf("%w: %q: the port is not a number", ErrAddr, s)
	}
	return Addr{Kind: TCP, Path: s}, nil
}

// String returns a in the form ParseAddr reads.
func (a Addr) String() string {
	switch a.Kind {
	case Unix:
		return "unix:" + a.Path
	case VSock:
		return a.VSock.String()
	}
	return a.Path
}

// Listen listens on a. A unix socket left behind by a process that was
// killed is replaced; one that a live process serves is not.
func (a Addr) Listen() (net.Listener, error) {
	switch a.Kind {
	case Unix:
		if err := removeStaleSocket(a.Path); err != nil {
			return nil, err
		}
		return net.Listen("unix", a.Path)
	case VSock:
		return vsock.Listen(a.VSock.Port)
	}
	return net.Listen("tcp", a.Path)
}

// Dial connects to a. A vsock address must name its CID.
func (a Addr) Dial(ctx context.Context) (net.Conn, error) {
	switch a.Kind {
	case Unix:
		var d net.Dialer
		return d.DialContext(ctx, "unix", a.Path)
	case VSock:
		if a.VSock.CID == vsockAnyCID {
			return nil, fmt.Errorf("%w: %s names no CID to dial", ErrAddr, a)
		}
		return vsock.Dial(ctx, a.VSock)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", a.Path)
}

// removeStaleSocket removes the unix socket at path when nothing answers
// on it. Anything else at path is left for Listen to fail on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("bridge: %s is in use by a running process", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("bridge: remove the stale socket %s: %w", path, err)
	}
	return nil
}

// OnlyFrom returns ln, refusing (closing at once) every vsock connection
// that does not come from context id cid: the parent's proxy and file
// store serve its one enclave, not every enclave or VM on the machine.
// Connections of other kinds pass.
func OnlyFrom(ln net.Listener, cid uint32) net.Listener { return &cidListener{Listener: ln, cid: cid} }

type cidListener struct {
	net.Listener
	cid uint32
}

func (l *cidListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if a, ok := c.RemoteAddr().(vsock.Addr); !ok || a.CID == l.cid {
			return c, nil
		}
		c.Close()
	}
}
