package audit

import (
	"fmt"
	"slices"
	"sort"
)

// Anchor is where a run of entries starts: the sequence number and hash
// of the entry just before it. The zero Anchor is the start of the log.
type Anchor struct {
	Seq  uint64 `json:"seq"`
	Hash Digest `json:"hash"`
}

// Chain is the retained part of the audit log: the entries after its
// anchor, in order. The zero Chain is empty and anchored at the start of
// the log. It is not safe for concurrent use.
type Chain struct {
	anchor  Anchor
	entries []Entry
	size    int
}

// NewChain returns a chain of entries retained after anchor, checking that
// they follow from it (a *BrokenLinkError otherwise). It keeps entries.
func NewChain(anchor Anchor, entries []Entry) (*Chain, error) {
	if err := Verify(anchor, entries); err != nil {
		return nil, err
	}
	c := &Chain{anchor: anchor, entries: entries}
	for i := range entries {
		c.size += entries[i].Size()
	}
	return c, nil
}

// Append numbers e after the chain's head, computes its hash, adds it and
// returns it.
func (c *Chain) Append(e Entry) Entry {
	head := c.Head()
	e.Seq = head.Seq + 1
	e.Hash = Hash(head.Hash, &e)
	c.entries = append(c.entries, e)
	c.size += e.Size()
	return e
}

// Anchor returns the anchor of the retained entries.
func (c *Chain) Anchor() Anchor { return c.anchor }

// Head returns the sequence number and hash of the last entry, or the
// anchor when no entry is retained.
func (c *Chain) Head() Anchor {
	if n := len(c.entries); n > 0 {
		return Anchor{Seq: c.entries[n-1].Seq, Hash: c.entries[n-1].Hash}
	}
	return c.anchor
}

// Len returns the number of retained entries.
func (c *Chain) Len() int { return len(c.entries) }

// Size returns the retained entries' total Size.
func (c *Chain) Size() int { return c.size }

// Entries returns copies of up to limit retained entries with Seq >= from
// (limit <= 0: all of them).
func (c *Chain) Entries(from uint64, limit int) []Entry {
	i := c.index(from)
	j := len(c.entries)
	if limit > 0 && j-i > limit {
		j = i + limit
	}
	return slices.Clone(c.entries[i:j])
}

// EntriesSince returns copies of up to limit retained entries whose Time
// is at t or later (limit <= 0: all of them). Entries are in proposer
// time order only roughly (proposers' clocks differ), so this returns
// every entry from the first one at or after t.
func (c *Chain) EntriesSince(t int64, limit int) []Entry {
	for i := range c.entries {
		if c.entries[i].Time.UnixNano() >= t {
			return c.Entries(c.entries[i].Seq, limit)
		}
	}
	return nil
}

// index returns the position of the first retained entry with Seq >= seq.
func (c *Chain) index(seq uint64) int {
	return sort.Search(len(c.entries), func(i int) bool { return c.entries[i].Seq >= seq })
}

// Truncate drops the retained entries up to and including seq, whose hash
// must be hash; entry seq becomes the anchor. It returns ErrTruncate (and
// changes nothing) when the chain does not retain entry seq or its hash
// differs.
func (c *Chain) Truncate(seq uint64, hash Digest) error {
	i := c.index(seq)
	if i == len(c.entries) || c.entries[i].Seq != seq {
		return fmt.Errorf("%w: entry %d is not retained (retained: %d to %d)", ErrTruncate, seq, c.anchor.Seq+1, c.Head().Seq)
	}
	if c.entries[i].Hash != hash {
		return fmt.Errorf("%w: entry %d has another hash", ErrTruncate, seq)
	}
	c.drop(i + 1)
	return nil
}

// TrimTo drops the oldest entries until at most n remain.
func (c *Chain) TrimTo(n int) {
	if len(c.entries) > n {
		c.drop(len(c.entries) - n)
	}
}

// drop removes the first n retained entries, anchoring at the last.
func (c *Chain) drop(n int) {
	if n == 0 {
		return
	}
	last := c.entries[n-1]
	c.anchor = Anchor{Seq: last.Seq, Hash: last.Hash}
	for i := range c.entries[:n] {
		c.size -= c.entries[i].Size()
	}
	c.entries = slices.Delete(c.entries, 0, n)
}

// Verify checks that entries follow from anchor: numbered from anchor.Seq+1
// without gaps, each hash the hash of the entry chained after the one
// before. It returns nil or a *BrokenLinkError naming the first broken
// entry.
func Verify(anchor Anchor, entries []Entry) error {
	prev := anchor
	for i := range entries {
		e := &entries[i]
		want := prev.Seq + 1
		switch {
		case e.Seq < want:
			return &BrokenLinkError{Seq: want, Why: fmt.Sprintf("entry %d comes again, or out of order, where %d should be", e.Seq, want)}
		case e.Seq > want:
			return &BrokenLinkError{Seq: want, Why: fmt.Sprintf("missing: the next entry is %d", e.Seq)}
		case !e.Kind.Valid():
			return &BrokenLinkError{Seq: e.Seq, Why: fmt.Sprintf("unknown kind %d", uint8(e.Kind))}
		case Hash(prev.Hash, e) != e.Hash:
			return &BrokenLinkError{Seq: e.Seq, Why: "hash does not match the entry and the one before it (changed, removed or reordered)"}
		}
		prev = Anchor{Seq: e.Seq, Hash: e.Hash}
	}
	return nil
}

// VerifyHead is Verify, and also checks that the last entry (or the anchor
// when there are none) is head: a run that verifies but ends elsewhere was
// cut short or rewritten.
func VerifyHead(anchor Anchor, entries []Entry, head Anchor) error {
	if err := Verify(anchor, entries); err != nil {
		return err
	}
	got := anchor
	if n := len(entries); n > 0 {
		got = Anchor{Seq: entries[n-1].Seq, Hash: entries[n-1].Hash}
	}
	switch {
	case got.Seq < head.Seq:
		return &BrokenLinkError{Seq: got.Seq + 1, Why: fmt.Sprintf("missing: the chain ends at %d, its head is %d", got.Seq, head.Seq)}
	case got.Seq > head.Seq || got.Hash != head.Hash:
		return &BrokenLinkError{Seq: got.Seq, Why: "the last entry is not the head"}
	}
	return nil
}
