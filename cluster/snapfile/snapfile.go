package snapfile

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// magic is the file's first line.
const magic = "coterie-snapshot v1\n"

// Limits of what Read accepts.
const (
	maxHeaderBytes = 64 << 10
	// MaxStateBytes bounds a state, as the FSM bounds a raft snapshot.
	MaxStateBytes = 1 << 30
)

// Sentinel errors; Read wraps one of them, with what it found.
var (
	// ErrFormat: not a snapshot file, or a malformed or truncated one.
	ErrFormat = errors.New("snapfile: not a well-formed snapshot file")
	// ErrChecksum: the state is not the one the header describes.
	ErrChecksum = errors.New("snapfile: the state does not match the header's checksum")
	// ErrSignature: the header's signature does not verify under the key it
	// names.
	ErrSignature = errors.New("snapfile: the header's signature does not verify")
)

// Header describes a saved state. IdentityKey is the saving node's
// identity key, hex; Signature signs the header's JSON encoding with
// Signature empty.
type Header struct {
	ClusterID   string    `json:"cluster_id"`
	Node        string    `json:"node"`
	Index       uint64    `json:"index"`
	SavedAt     time.Time `json:"saved_at"`
	StateBytes  int64     `json:"state_bytes"`
	StateSHA256 string    `json:"state_sha256"`
	IdentityKey string    `json:"identity_key"`
	Signature   string    `json:"signature,omitempty"`
}

// signed returns the bytes the signature covers.
func (h Header) signed() ([]byte, error) {
	h.Signature = ""
	return json.Marshal(h)
}

// Write writes state behind a header filled from h (cluster, node, index,
// time) and signed with key.
func Write(w io.Writer, h Header, state []byte, key ed25519.PrivateKey) error {
	sum := sha256.Sum256(state)
	h.StateBytes, h.StateSHA256 = int64(len(state)), hex.EncodeToString(sum[:])
	h.IdentityKey = hex.EncodeToString(key.Public().(ed25519.PublicKey))
	body, err := h.signed()
	if err != nil {
		return err
	}
	h.Signature = hex.EncodeToString(ed25519.Sign(key, body))
	line, err := json.Marshal(h)
	if err != nil {
		return err
	}
	for _, b := range [][]byte{[]byte(magic), line, {'\n'}, state} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// Read reads a snapshot file and checks it: the format, the state's size
// and checksum, and the signature under the key the header names. Whether
// that key belongs to a member is for the caller to judge (Summary.Signer
// does, from the state's own member table).
func Read(r io.Reader) (Header, []byte, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	first, _ := br.ReadSlice('\n')
	if string(first) != magic {
		return Header{}, nil, fmt.Errorf("%w: it does not start with %q", ErrFormat, magic[:len(magic)-1])
	}
	line, err := readLine(br)
	if err != nil {
		return Header{}, nil, err
	}
	var h Header
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return Header{}, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if h.StateBytes < 0 || h.StateBytes > MaxStateBytes {
		return Header{}, nil, fmt.Errorf("%w: state of %d bytes", ErrFormat, h.StateBytes)
	}
	// Read as the bytes come, so that a header's claim allocates nothing.
	state, err := io.ReadAll(io.LimitReader(br, h.StateBytes))
	if err != nil || int64(len(state)) != h.StateBytes {
		return Header{}, nil, fmt.Errorf("%w: state truncated at %d of %d bytes", ErrFormat, len(state), h.StateBytes)
	}
	if n, _ := br.Read(make([]byte, 1)); n != 0 {
		return Header{}, nil, fmt.Errorf("%w: bytes after the state", ErrFormat)
	}
	if sum := sha256.Sum256(state); hex.EncodeToString(sum[:]) != h.StateSHA256 {
		return Header{}, nil, fmt.Errorf("%w: state SHA-256 %x, header says %s", ErrChecksum, sum, h.StateSHA256)
	}
	pub, err1 := hex.DecodeString(h.IdentityKey)
	sig, err2 := hex.DecodeString(h.Signature)
	body, err3 := h.signed()
	if err := errors.Join(err1, err2, err3); err != nil || len(pub) != ed25519.PublicKeySize {
		return Header{}, nil, fmt.Errorf("%w: malformed identity key or signature", ErrFormat)
	}
	if !ed25519.Verify(pub, body, sig) {
		return Header{}, nil, fmt.Errorf("%w: signed by %s", ErrSignature, h.IdentityKey)
	}
	return h, state, nil
}

// readLine reads the header line, bounded by maxHeaderBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, more, err := br.ReadLine()
		if err != nil {
			return nil, fmt.Errorf("%w: no header: %v", ErrFormat, err)
		}
		line = append(line, part...)
		if len(line) > maxHeaderBytes {
			return nil, fmt.Errorf("%w: header longer than %d bytes", ErrFormat, maxHeaderBytes)
		}
		if !more {
			return line, nil
		}
	}
}
