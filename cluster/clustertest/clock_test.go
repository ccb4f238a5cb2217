package clustertest

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(start)
	early, late, now := c.After(time.Second), c.After(3*time.Second), c.After(0)
	select {
	case <-now:
	default:
		t.Fatal("After(0) did not fire at once")
	}
	c.Advance(999 * time.Millisecond)
	select {
	case <-early:
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Millisecond)
	select {
	case got := <-early:
		if !got.Equal(start.Add(time.Second)) {
			t.Fatalf("fired with %v", got)
		}
	default:
		t.Fatal("did not fire when due")
	}
	select {
	case <-late:
		t.Fatal("late timer fired")
	default:
	}
	c.Advance(time.Hour)
	select {
	case <-late:
	default:
		t.Fatal("late timer did not fire")
	}
	if !c.Now().Equal(start.Add(time.Hour + time.Second)) {
		t.Fatalf("now %v", c.Now())
	}
}
