// Package wire holds the small binary encoding that the enclave packages use
// for sealed blobs, evidence, keyrings and keyring transfers.
//
// Every format built on it is canonical: a decoder accepts exactly the bytes
// its encoder produces, so fuzz targets can check decode-then-encode round
// trips byte for byte. A Reader never panics on short or hostile input; its
// first error is sticky and every later read returns zero values.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrShort is returned when the input ends before a field does.
var ErrShort = errors.New("wire: input too short")

// ErrTrailing is returned by Done when bytes remain after the last field.
var ErrTrailing = errors.New("wire: trailing bytes after the last field")

// ErrTooLong is returned when a length prefix exceeds the caller's limit.
var ErrTooLong = errors.New("wire: field longer than allowed")

// AppendU16 appends v in big-endian order.
func AppendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }

// AppendU32 appends v in big-endian order.
func AppendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// AppendBytes16 appends v with a 16-bit length prefix. The formats that use
// it carry keys, hashes and labels; a longer v is a bug in the caller.
func AppendBytes16(b, v []byte) []byte {
	if len(v) > math.MaxUint16 {
		panic("wire: field too long for a 16-bit length prefix")
	}
	b = AppendU16(b, uint16(len(v)))
	return append(b, v...)
}

// AppendBytes32 appends v with a 32-bit length prefix.
func AppendBytes32(b, v []byte) []byte {
	b = AppendU32(b, uint32(len(v)))
	return append(b, v...)
}

// Reader decodes fields from a byte slice. The slices it returns alias the
// input; callers copy what they keep.
type Reader struct {
	buf []byte
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Err returns the first error the Reader met, or nil.
func (r *Reader) Err() error { return r.err }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.buf) }

// Fixed returns the next n bytes.
func (r *Reader) Fixed(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.buf) < n {
		r.err = fmt.Errorf("%w: need %d bytes, have %d", ErrShort, n, len(r.buf))
		return nil
	}
	v := r.buf[:n:n]
	r.buf = r.buf[n:]
	return v
}

// U8 returns the next byte.
func (r *Reader) U8() byte {
	v := r.Fixed(1)
	if v == nil {
		return 0
	}
	return v[0]
}

// U16 returns the next big-endian uint16.
func (r *Reader) U16() uint16 {
	v := r.Fixed(2)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

// U32 returns the next big-endian uint32.
func (r *Reader) U32() uint32 {
	v := r.Fixed(4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// Bytes16 returns a field with a 16-bit length prefix, at most limit bytes.
func (r *Reader) Bytes16(limit int) []byte {
	n := int(r.U16())
	return r.limited(n, limit)
}

// Bytes32 returns a field with a 32-bit length prefix, at most limit bytes.
func (r *Reader) Bytes32(limit int) []byte {
	n := int64(r.U32())
	if r.err == nil && n > int64(limit) {
		r.err = fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, n, limit)
		return nil
	}
	return r.Fixed(int(n))
}

func (r *Reader) limited(n, limit int) []byte {
	if r.err == nil && n > limit {
		r.err = fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, n, limit)
		return nil
	}
	return r.Fixed(n)
}

// Rest returns all unread bytes.
func (r *Reader) Rest() []byte { return r.Fixed(len(r.buf)) }

// Done returns the first error, or ErrTrailing if unread bytes remain.
func (r *Reader) Done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.buf) != 0 {
		return fmt.Errorf("%w: %d left", ErrTrailing, len(r.buf))
	}
	return nil
}
