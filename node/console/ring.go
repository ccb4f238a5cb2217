package console

import "time"

// ring is a sequence of at most a fixed number of elements: pushing onto a
// full ring drops its oldest element. It is not safe for concurrent use.
type ring[T any] struct {
	buf  []T
	head int // index of the oldest element
	n    int
}

func newRing[T any](capacity int) *ring[T] {
	return &ring[T]{buf: make([]T, max(capacity, 1))}
}

// push appends v, dropping the oldest element when the ring is full.
func (r *ring[T]) push(v T) {
	if r.n < len(r.buf) {
		r.buf[(r.head+r.n)%len(r.buf)] = v
		r.n++
		return
	}
	r.buf[r.head] = v
	r.head = (r.head + 1) % len(r.buf)
}

func (r *ring[T]) len() int { return r.n }

// at returns the i-th element, 0 being the oldest.
func (r *ring[T]) at(i int) *T { return &r.buf[(r.head+i)%len(r.buf)] }

// newestFirst returns up to limit elements, the newest first.
func (r *ring[T]) newestFirst(limit int) []T {
	out := make([]T, 0, min(r.n, limit))
	for i := r.n - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, *r.at(i))
	}
	return out
}

// maxBucketKeys bounds the distinct keys one bucket counts; the rest are
// counted under otherKey.
const maxBucketKeys = 8

// otherKey counts what a full bucket has no key of its own for.
const otherKey = "other"

// buckets counts events by key in consecutive time buckets of one step,
// keeping as many as cover its window: a rolling window of counters whose
// memory does not grow with the events. It is not safe for concurrent
// use.
type buckets struct {
	step time.Duration
	r    *ring[bucket]
}

type bucket struct {
	start  time.Time
	counts map[string]int
}

// newBuckets returns buckets of step that cover window.
func newBuckets(step, window time.Duration) *buckets {
	return &buckets{step: step, r: newRing[bucket](int(window/step) + 1)}
}

// add counts n events of key at t. An event older than the oldest bucket
// kept is dropped; one that falls between two kept buckets counts in the
// newer one.
func (b *buckets) add(t time.Time, key string, n int) {
	start := t.Truncate(b.step)
	if b.r.len() == 0 || start.After(b.r.at(b.r.len()-1).start) {
		b.r.push(bucket{start: start, counts: map[string]int{}})
		b.r.at(b.r.len()-1).inc(key, n)
		return
	}
	if start.Before(b.r.at(0).start) {
		return
	}
	// The newest bucket that starts no later than t: t's own, or the
	// one before a gap, whose newer neighbour counts t.
	for i := b.r.len() - 1; i >= 0; i-- {
		if bk := b.r.at(i); !bk.start.After(start) {
			if bk.start.Before(start) {
				bk = b.r.at(i + 1)
			}
			bk.inc(key, n)
			return
		}
	}
}

func (bk *bucket) inc(key string, n int) {
	if _, ok := bk.counts[key]; !ok && len(bk.counts) >= maxBucketKeys {
		key = otherKey
	}
	bk.counts[key] += n
}

// sum adds up the counts of the buckets that start within window before
// now (the bucket that holds now - window included).
func (b *buckets) sum(now time.Time, window time.Duration) map[string]int {
	from := now.Add(-window).Truncate(b.step)
	out := map[string]int{}
	for i := 0; i < b.r.len(); i++ {
		bk := b.r.at(i)
		if bk.start.Before(from) || bk.start.After(now) {
			continue
		}
		for k, c := range bk.counts {
			out[k] += c
		}
	}
	return out
}
