package cosigner

import (
	"container/list"
	"sync"
)

// lru is a bounded map that evicts the least recently used entry. It is
// safe for concurrent use. A capacity of 0 keeps nothing.
type lru[K comparable, V any] struct {
	max int

	mu      sync.Mutex
	order   *list.List // of *lruEntry[K, V], most recently used first
	entries map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, order: list.New(), entries: make(map[K]*list.Element)}
}

// get returns the value of k and marks it used.
func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruEntry[K, V]).val, true
}

// put sets the value of k, evicting the least recently used entry when the
// cache is full.
func (c *lru[K, V]) put(k K, v V) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		el.Value.(*lruEntry[K, V]).val = v
		c.order.MoveToFront(el)
		return
	}
	c.entries[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v})
	if c.order.Len() > c.max {
		last := c.order.Back()
		delete(c.entries, last.Value.(*lruEntry[K, V]).key)
		c.order.Remove(last)
	}
}

// deleteFunc removes every entry whose key matches.
func (c *lru[K, V]) deleteFunc(match func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.entries {
		if match(k) {
			delete(c.entries, k)
			c.order.Remove(el)
		}
	}
}

// len returns the number of entries.
func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
