package cms

import "fmt"

// Bounds of what the BER reader accepts. A KMS envelope for a 32-byte
// data key is about 460 bytes and 30 elements, nested 11 deep.
const (
	// MaxEnvelopeSize bounds an envelope before it is decoded. KMS's
	// largest plaintext, 4 KiB from GenerateRandom, fits with room.
	MaxEnvelopeSize = 16 << 10
	maxDepth        = 16
	maxElements     = 256
	maxLengthOctets = 3 // definite lengths up to 16 MiB, far above MaxEnvelopeSize
)

// element is one decoded BER element.
type element struct {
	// id is the identifier octet: class, the constructed bit and a tag
	// number below 31 (the reader refuses the high-tag-number form).
	id byte
	// value holds the contents of a primitive element.
	value []byte
	// children are the elements inside a constructed one.
	children []element
}

func (e element) constructed() bool { return e.id&0x20 != 0 }

// berReader decodes BER (X.690) with definite and indefinite lengths,
// counting what it reads so that hostile input stays bounded.
type berReader struct{ elements int }

// parseBER decodes b as exactly one element. Errors wrap ErrMalformed.
func parseBER(b []byte) (element, error) {
	if len(b) > MaxEnvelopeSize {
		return element{}, fmt.Errorf("%w: %d bytes is over the %d limit", ErrMalformed, len(b), MaxEnvelopeSize)
	}
	var r berReader
	e, rest, err := r.read(b, 0)
	if err != nil {
		return element{}, err
	}
	if len(rest) != 0 {
		return element{}, fmt.Errorf("%w: %d bytes after the message", ErrMalformed, len(rest))
	}
	return e, nil
}

// read decodes the element at the start of b and returns it with the bytes
// after it.
func (r *berReader) read(b []byte, depth int) (element, []byte, error) {
	r.elements++
	switch {
	case depth > maxDepth:
		return element{}, nil, fmt.Errorf("%w: nested deeper than %d", ErrMalformed, maxDepth)
	case r.elements > maxElements:
		return element{}, nil, fmt.Errorf("%w: more than %d elements", ErrMalformed, maxElements)
	case len(b) < 2:
		return element{}, nil, fmt.Errorf("%w: truncated", ErrMalformed)
	case b[0] == 0:
		return element{}, nil, fmt.Errorf("%w: unexpected end-of-contents", ErrMalformed)
	case b[0]&0x1f == 0x1f:
		return element{}, nil, fmt.Errorf("%w: high tag number", ErrMalformed)
	}
	e := element{id: b[0]}
	lenByte := b[1]
	b = b[2:]
	if lenByte == 0x80 {
		if !e.constructed() {
			return element{}, nil, fmt.Errorf("%w: indefinite length on a primitive element", ErrMalformed)
		}
		for {
			if len(b) >= 2 && b[0] == 0 && b[1] == 0 {
				return e, b[2:], nil
			}
			child, rest, err := r.read(b, depth+1)
			if err != nil {
				return element{}, nil, err
			}
			e.children = append(e.children, child)
			b = rest
		}
	}
	n := int(lenByte)
	if lenByte > 0x80 {
		k := int(lenByte & 0x7f)
		if k > maxLengthOctets || len(b) < k {
			return element{}, nil, fmt.Errorf("%w: bad length", ErrMalformed)
		}
		n = 0
		for _, c := range b[:k] {
			n = n<<8 | int(c)
		}
		b = b[k:]
	}
	if n > len(b) {
		return element{}, nil, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	contents, rest := b[:n], b[n:]
	if !e.constructed() {
		e.value = contents
		return e, rest, nil
	}
	for len(contents) > 0 {
		child, more, err := r.read(contents, depth+1)
		if err != nil {
			return element{}, nil, err
		}
		e.children = append(e.children, child)
		contents = more
	}
	return e, rest, nil
}
