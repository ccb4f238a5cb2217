package wire

import (
	"errors"
	"testing"
)

func TestReader(t *testing.T) {
	b := AppendU16(nil, 0x0102)
	b = AppendU32(b, 0x03040506)
	b = AppendBytes16(b, []byte("ab"))
	b = AppendBytes32(b, []byte("cde"))
	b = append(b, 9)
	r := NewReader(b)
	if r.U16() != 0x0102 || r.U32() != 0x03040506 || string(r.Bytes16(2)) != "ab" || string(r.Bytes32(3)) != "cde" || r.U8() != 9 {
		t.Fatalf("decoded wrongly: %v", r.Err())
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		read func(r *Reader)
		in   []byte
		want error
	}{
		{"short fixed", func(r *Reader) { r.Fixed(3) }, []byte{1, 2}, ErrShort},
		{"short prefix", func(r *Reader) { r.Bytes16(10) }, []byte{0}, ErrShort},
		{"short body", func(r *Reader) { r.Bytes16(10) }, []byte{0, 3, 1}, ErrShort},
		{"over limit 16", func(r *Reader) { r.Bytes16(2) }, []byte{0, 3, 1, 2, 3}, ErrTooLong},
		{"over limit 32", func(r *Reader) { r.Bytes32(2) }, []byte{0xff, 0xff, 0xff, 0xff}, ErrTooLong},
		{"trailing", func(r *Reader) { r.U8() }, []byte{1, 2}, ErrTrailing},
		{"sticky", func(r *Reader) { r.Fixed(5); r.U8() }, []byte{1, 2}, ErrShort},
	} {
		r := NewReader(tc.in)
		tc.read(r)
		if err := r.Done(); !errors.Is(err, tc.want) {
			t.Errorf("%s: Done() = %v, want %v", tc.name, err, tc.want)
		}
	}
}
