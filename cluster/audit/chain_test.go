package audit

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// sample returns n entries of assorted kinds, not yet chained.
func sample(n int) []Entry {
	kinds := []Kind{KindClaimed, KindDecided, KindReserved, KindCompleted, KindReleased, KindMemberAdded}
	out := make([]Entry, n)
	for i := range out {
		out[i] = Entry{
			Index: uint64(10 + i), Time: time.Unix(1_700_000_000+int64(i), int64(i)).UTC(),
			Kind: kinds[i%len(kinds)], Node: fmt.Sprintf("n%d", i%3+1), Request: fmt.Sprintf("r%d", i/4),
			APIUser: "u1", Reason: "amount 1.5 BTC to bc1q over the limit", Number: uint64(i),
		}
	}
	return out
}

func build(t *testing.T, n int) *Chain {
	t.Helper()
	c := &Chain{}
	for _, e := range sample(n) {
		c.Append(e)
	}
	return c
}

func TestAppendNumbersAndChains(t *testing.T) {
	c := build(t, 5)
	es := c.Entries(0, 0)
	if len(es) != 5 || c.Len() != 5 {
		t.Fatalf("got %d entries", len(es))
	}
	var prev Digest
	for i, e := range es {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		if e.Hash != Hash(prev, &e) {
			t.Fatalf("entry %d: hash is not chained", e.Seq)
		}
		prev = e.Hash
	}
	if h := c.Head(); h.Seq != 5 || h.Hash != prev {
		t.Fatalf("head %+v", h)
	}
	if err := Verify(Anchor{}, es); err != nil {
		t.Fatal(err)
	}
	if err := VerifyHead(Anchor{}, es, c.Head()); err != nil {
		t.Fatal(err)
	}
	if got := c.Entries(3, 1); len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("Entries(3, 1) = %v", got)
	}
	size := 0
	for _, e := range es {
		size += e.Size()
	}
	if c.Size() != size {
		t.Fatalf("size %d, want %d", c.Size(), size)
	}
}

// TestHashCoversEveryField changes each field in turn: every change must
// change the hash, so no field can be edited unseen.
func TestHashCoversEveryField(t *testing.T) {
	base := sample(1)[0]
	base.Seq = 1
	h := Hash(Digest{}, &base)
	edits := map[string]func(e *Entry){
		"seq": func(e *Entry) { e.Seq++ }, "index": func(e *Entry) { e.Index++ },
		"time": func(e *Entry) { e.Time = e.Time.Add(time.Nanosecond) }, "kind": func(e *Entry) { e.Kind = KindTruncated },
		"node": func(e *Entry) { e.Node += "x" }, "request": func(e *Entry) { e.Request += "x" },
		"api user": func(e *Entry) { e.APIUser += "x" }, "subject": func(e *Entry) { e.Subject = "x" },
		"key": func(e *Entry) { e.Key = "x" }, "presignature": func(e *Entry) { e.Presignature = "x" },
		"action": func(e *Entry) { e.Action = "x" }, "outcome": func(e *Entry) { e.Outcome = "x" },
		"reason": func(e *Entry) { e.Reason += "x" }, "handler key": func(e *Entry) { e.HandlerKey = "x" },
		"digest": func(e *Entry) { e.Digest = "x" }, "detail": func(e *Entry) { e.Detail = "x" },
		"number": func(e *Entry) { e.Number++ },
		// Moving a byte from one string to the next must not hash the same.
		"boundary": func(e *Entry) { e.Node, e.Request = "n1r", "0" },
	}
	for name, edit := range edits {
		e := base
		edit(&e)
		if Hash(Digest{}, &e) == h {
			t.Errorf("%s: the hash does not cover it", name)
		}
	}
	if Hash(Digest{1}, &base) == h {
		t.Error("the hash does not cover the previous hash")
	}
}

func TestVerifyNamesFirstBrokenLink(t *testing.T) {
	c := build(t, 8)
	good := c.Entries(0, 0)
	cases := []struct {
		name    string
		anchor  Anchor
		tamper  func([]Entry) []Entry
		wantSeq uint64
		why     string
	}{
		{"intact", Anchor{}, func(es []Entry) []Entry { return es }, 0, ""},
		{"changed reason", Anchor{}, func(es []Entry) []Entry { es[4].Reason = "approved"; return es }, 5, "hash does not match"},
		{"changed hash", Anchor{}, func(es []Entry) []Entry { es[2].Hash[0] ^= 1; return es }, 3, "hash does not match"},
		{"rehashed after a change", Anchor{}, func(es []Entry) []Entry {
			es[5].Outcome = "signed"
			es[5].Hash = Hash(es[4].Hash, &es[5])
			return es // the next entry no longer follows
		}, 7, "hash does not match"},
		{"removed entry", Anchor{}, func(es []Entry) []Entry { return slices.Delete(es, 3, 4) }, 4, "missing"},
		{"removed and renumbered", Anchor{}, func(es []Entry) []Entry {
			es = slices.Delete(es, 3, 4)
			for i := 3; i < len(es); i++ {
				es[i].Seq--
			}
			return es
		}, 4, "hash does not match"},
		{"reordered", Anchor{}, func(es []Entry) []Entry { es[5], es[6] = es[6], es[5]; return es }, 6, "missing"},
		{"repeated", Anchor{}, func(es []Entry) []Entry { return slices.Insert(es, 3, es[2]) }, 4, "comes again"},
		{"wrong anchor hash", Anchor{Hash: Digest{9}}, func(es []Entry) []Entry { return es }, 1, "hash does not match"},
		{"wrong anchor seq", Anchor{Seq: 3}, func(es []Entry) []Entry { return es }, 4, "comes again"},
		{"unknown kind", Anchor{}, func(es []Entry) []Entry { es[1].Kind = 200; return es }, 2, "unknown kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.anchor, tc.tamper(slices.Clone(good)))
			if tc.wantSeq == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var bl *BrokenLinkError
			if !errors.As(err, &bl) || !errors.Is(err, ErrBrokenLink) {
				t.Fatalf("got %v, want a broken link", err)
			}
			if bl.Seq != tc.wantSeq || !strings.Contains(bl.Why, tc.why) {
				t.Fatalf("got %v, want entry %d (%s)", err, tc.wantSeq, tc.why)
			}
		})
	}
}

func TestVerifyHeadCatchesCutEnd(t *testing.T) {
	c := build(t, 6)
	es := c.Entries(0, 0)
	err := VerifyHead(Anchor{}, es[:4], c.Head())
	var bl *BrokenLinkError
	if !errors.As(err, &bl) || bl.Seq != 5 {
		t.Fatalf("got %v, want entry 5 missing", err)
	}
}

func TestTruncate(t *testing.T) {
	c := build(t, 10)
	es := c.Entries(0, 0)
	head := c.Head()
	for _, bad := range []struct {
		seq  uint64
		hash Digest
	}{{0, Digest{}}, {11, head.Hash}, {4, es[2].Hash}, {4, Digest{}}} {
		if err := c.Truncate(bad.seq, bad.hash); !errors.Is(err, ErrTruncate) {
			t.Fatalf("Truncate(%d) = %v, want ErrTruncate", bad.seq, err)
		}
	}
	if c.Len() != 10 {
		t.Fatal("a refused truncation changed the chain")
	}
	if err := c.Truncate(4, es[3].Hash); err != nil {
		t.Fatal(err)
	}
	if a := c.Anchor(); a.Seq != 4 || a.Hash != es[3].Hash || c.Len() != 6 || c.Head() != head {
		t.Fatalf("after truncate: anchor %+v, %d entries, head %+v", a, c.Len(), c.Head())
	}
	if err := c.Truncate(4, es[3].Hash); !errors.Is(err, ErrTruncate) {
		t.Fatalf("truncating a dropped entry: %v", err)
	}
	if err := Verify(c.Anchor(), c.Entries(0, 0)); err != nil {
		t.Fatal(err)
	}
	// The chain goes on from the same head.
	e := c.Append(sample(1)[0])
	if e.Seq != 11 || e.Hash != Hash(head.Hash, &e) {
		t.Fatalf("appended %d after truncation", e.Seq)
	}
	c.TrimTo(3)
	if c.Len() != 3 || c.Anchor().Seq != 8 {
		t.Fatalf("TrimTo: %d entries, anchor %d", c.Len(), c.Anchor().Seq)
	}
	size := 0
	for _, e := range c.Entries(0, 0) {
		size += e.Size()
	}
	if c.Size() != size {
		t.Fatalf("size %d after drops, want %d", c.Size(), size)
	}
}

// TestExportDropVerify exports the oldest entries to a segment, drops
// them, and checks that the segment and the retained chain verify and link;
// then that tampering with the file is named.
func TestExportDropVerify(t *testing.T) {
	c := build(t, 12)
	head := c.Head()
	seg := Segment{Anchor: c.Anchor(), Entries: c.Entries(0, 7)}
	file, err := MarshalSegment(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Truncate(seg.Head().Seq, seg.Head().Hash); err != nil {
		t.Fatal(err)
	}
	read, err := ReadSegment(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if err := read.Verify(); err != nil {
		t.Fatal(err)
	}
	if read.Head() != c.Anchor() {
		t.Fatalf("segment head %+v does not link to the retained anchor %+v", read.Head(), c.Anchor())
	}
	if err := VerifyHead(c.Anchor(), c.Entries(0, 0), head); err != nil {
		t.Fatal(err)
	}
	// Segment and retained chain verify as one run.
	if err := VerifyHead(Anchor{}, append(read.Entries, c.Entries(0, 0)...), head); err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSuffix(string(file), "\n"), "\n")
	tampered := []struct {
		name    string
		edit    func([]string) []string
		wantSeq uint64
	}{
		{"changed node", func(l []string) []string {
			l[4] = strings.Replace(l[4], `"node":"n`, `"node":"x`, 1)
			return l
		}, 4},
		{"changed reason", func(l []string) []string {
			l[3] = strings.Replace(l[3], "over the limit", "within the limit", 1)
			return l
		}, 3},
		{"removed line", func(l []string) []string { return slices.Delete(l, 2, 3) }, 2},
		{"cut end", func(l []string) []string { return l[:len(l)-2] }, 6},
		{"swapped lines", func(l []string) []string { l[5], l[6] = l[6], l[5]; return l }, 5},
	}
	for _, tc := range tampered {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.edit(slices.Clone(lines))
			s, err := ReadSegment(strings.NewReader(strings.Join(l, "\n") + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			var bl *BrokenLinkError
			if err := s.Verify(); !errors.As(err, &bl) || bl.Seq != tc.wantSeq {
				t.Fatalf("got %v, want a broken link at %d", err, tc.wantSeq)
			}
		})
	}
}

func TestReadSegmentRefusesGarbage(t *testing.T) {
	for _, in := range []string{"", "{}\n", `{"format":"other"}` + "\n", `{"format":"` + SegmentFormat + `"}` + "\n{not json\n",
		`{"format":"` + SegmentFormat + `"}` + "\n" + `{"kind":"no-such-kind"}` + "\n",
		`{"format":"` + SegmentFormat + `"}` + "\n" + `{"hash":"abc"}` + "\n"} {
		if _, err := ReadSegment(strings.NewReader(in)); !errors.Is(err, ErrSegment) {
			t.Errorf("ReadSegment(%q) = %v, want ErrSegment", in, err)
		}
	}
}

func TestNewChainChecks(t *testing.T) {
	c := build(t, 4)
	es := c.Entries(0, 0)
	if _, err := NewChain(Anchor{}, es); err != nil {
		t.Fatal(err)
	}
	es[1].Detail = "x"
	if _, err := NewChain(Anchor{}, es); !errors.Is(err, ErrBrokenLink) {
		t.Fatalf("NewChain of a tampered run: %v", err)
	}
}

func TestKindNames(t *testing.T) {
	for k := KindClaimed; k < kindEnd; k++ {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("kind %d: %q parses as %v, %v", k, k.String(), got, err)
		}
	}
}
