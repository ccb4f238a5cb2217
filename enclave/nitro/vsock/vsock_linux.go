package vsock

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ParentCID is the context id of a Nitro enclave's parent instance.
const ParentCID = 3

// Addr is a vsock address.
type Addr struct {
	CID, Port uint32
}

// Network returns "vsock".
func (a Addr) Network() string { return "vsock" }

// String returns "vsock://CID:PORT".
func (a Addr) String() string {
	return "vsock://" + strconv.FormatUint(uint64(a.CID), 10) + ":" + strconv.FormatUint(uint64(a.Port), 10)
}

// Dial connects to a stream socket at a. It checks ctx before it dials;
// the connect is bounded by the kernel's timeout.
func Dial(ctx context.Context, a Addr) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock: socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrVM{CID: a.CID, Port: a.Port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock: connect %s: %w", a, err)
	}
	// A non-blocking descriptor lets os.File use the runtime poller, so
	// deadlines and Close interrupt reads.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock: %w", err)
	}
	return &conn{File: os.NewFile(uintptr(fd), a.String()), remote: a}, nil
}

// conn is a connected vsock stream.
type conn struct {
	*os.File
	remote Addr
}

var _ net.Conn = (*conn)(nil)

func (c *conn) LocalAddr() net.Addr  { return Addr{CID: unix.VMADDR_CID_ANY} }
func (c *conn) RemoteAddr() net.Addr { return c.remote }
