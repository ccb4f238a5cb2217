package cluster

import (
	"encoding/binary"
	"io"
	"slices"
	"time"
)

// Forwarded proposals and the join exchange travel as frames: a 4-byte
// big-endian length, then that many bytes.

// frameChunk is how much of a frame's body readFrame allocates before the
// bytes have arrived: a peer that claims a large frame and sends little
// holds at most this much memory (plus what it did send, at most doubled).
const frameChunk = 64 << 10

// writeFrame writes a 4-byte big-endian length and the payload in one
// write, so a failed write never leaves a complete frame behind.
func writeFrame(w io.Writer, b []byte) error {
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame of at most max bytes. A longer claim is
// refused (ErrTooLarge) before anything is allocated for it, and memory
// grows only with the bytes that actually arrive. Once the header has
// arrived, the body must follow within timeout; with no timeout, the
// connection's deadline stays as it is.
func readFrame(conn deadlineReader, max int, timeout time.Duration) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, err
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	if n > int64(max) {
		return nil, errorf(ErrTooLarge, "frame of %d bytes, limit %d", n, max)
	}
	if timeout > 0 {
		_ = conn.SetReadDeadline(time.Now().Add(timeout))
	}
	return readBody(conn, n)
}

// deadlineReader is the part of a net.Conn that readFrame uses.
type deadlineReader interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// readBody reads exactly n bytes, allocating as they arrive: the buffer
// doubles from frameChunk up to n, so it never holds more than twice what
// arrived, and all it ever allocates stays under 2n.
func readBody(r io.Reader, n int64) ([]byte, error) {
	b := make([]byte, 0, min(n, frameChunk))
	for int64(len(b)) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, int(min(int64(cap(b)), n-int64(len(b)))))
		}
		// Never read past the frame, whatever capacity Grow rounded to.
		m, err := r.Read(b[len(b):min(int64(cap(b)), n)])
		b = b[:len(b)+m]
		if int64(len(b)) == n {
			break
		}
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}
