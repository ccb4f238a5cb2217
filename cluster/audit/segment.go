package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// SegmentFormat names the segment file format in its header.
const SegmentFormat = "coterie-audit-segment/1"

// maxLineBytes bounds one line of a segment file: an entry's strings are
// bounded by the cluster's command limits, far below it.
const maxLineBytes = 1 << 20

// Segment is a run of entries exported from the log, with the anchor it
// follows from.
type Segment struct {
	Anchor  Anchor
	Entries []Entry
	// Declared is the entry count the file's header declares (ReadSegment
	// sets it; WriteSegment writes len(Entries)).
	Declared int
}

// Verify checks the segment's chain from its anchor, and that it holds as
// many entries as its header declares (so that lines cut from the end are
// named too). It returns nil or a *BrokenLinkError.
func (s *Segment) Verify() error {
	if err := Verify(s.Anchor, s.Entries); err != nil {
		return err
	}
	if n := len(s.Entries); n != s.Declared {
		head := s.Head()
		return &BrokenLinkError{Seq: head.Seq + 1, Why: fmt.Sprintf("the file holds %d entries, its header declares %d", n, s.Declared)}
	}
	return nil
}

// Head returns the last entry's sequence number and hash, or the anchor
// when the segment is empty: the anchor the next segment (or the
// cluster's retained chain) must have.
func (s *Segment) Head() Anchor {
	if n := len(s.Entries); n > 0 {
		return Anchor{Seq: s.Entries[n-1].Seq, Hash: s.Entries[n-1].Hash}
	}
	return s.Anchor
}

// segmentHeader is a segment file's first line.
type segmentHeader struct {
	Format  string `json:"format"`
	Anchor  Anchor `json:"anchor"`
	Entries int    `json:"entries"`
}

// WriteSegment writes s as a segment file: a JSON header line (format,
// anchor, entry count), then one JSON entry per line.
func WriteSegment(w io.Writer, s Segment) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(segmentHeader{Format: SegmentFormat, Anchor: s.Anchor, Entries: len(s.Entries)}); err != nil {
		return err
	}
	for i := range s.Entries {
		if err := enc.Encode(&s.Entries[i]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// MarshalSegment returns s encoded as WriteSegment writes it.
func MarshalSegment(s Segment) ([]byte, error) {
	var b bytes.Buffer
	if err := WriteSegment(&b, s); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ReadSegment reads a segment file. It checks the format only (ErrSegment
// for a bad header or a line that does not decode); Segment.Verify checks
// the chain.
func ReadSegment(r io.Reader) (Segment, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	var s Segment
	if !sc.Scan() {
		return s, fmt.Errorf("%w: empty file%s", ErrSegment, scanErr(sc))
	}
	var h segmentHeader
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.Format != SegmentFormat {
		return s, fmt.Errorf("%w: not a %s file", ErrSegment, SegmentFormat)
	}
	s.Anchor, s.Declared = h.Anchor, h.Entries
	for line := 2; sc.Scan(); line++ {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return s, fmt.Errorf("%w: line %d: %v", ErrSegment, line, err)
		}
		s.Entries = append(s.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("%w: %v", ErrSegment, err)
	}
	return s, nil
}

func scanErr(sc *bufio.Scanner) string {
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return ": " + err.Error()
	}
	return ""
}
