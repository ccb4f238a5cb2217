package clock_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestFake(t *testing.T) {
	c := clock.NewFake(t0)
	var fired []string
	c.AfterFunc(2*time.Second, func() { fired = append(fired, "b") })
	c.AfterFunc(time.Second, func() { fired = append(fired, "a") })
	stopped := c.AfterFunc(time.Second, func() { fired = append(fired, "stopped") })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should succeed once")
	}
	if c.Pending() != 2 {
		t.Fatalf("pending = %d", c.Pending())
	}
	c.Advance(1500 * time.Millisecond)
	if strings.Join(fired, ",") != "a" || !c.Now().Equal(t0.Add(1500*time.Millisecond)) {
		t.Fatalf("fired %v at %v", fired, c.Now())
	}
	c.Advance(time.Hour)
	if strings.Join(fired, ",") != "a,b" || c.Pending() != 0 {
		t.Fatalf("fired %v, pending %d", fired, c.Pending())
	}

	done := make(chan struct{})
	c.AfterFunc(0, func() { close(done) })
	<-done // a zero delay fires without Advance

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		c.AfterFunc(time.Second, func() {})
		c.AfterFunc(time.Minute, func() {})
	}()
	if err := c.WaitForTimer(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if err := c.WaitForTimer(short, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitForTimer on a canceled context: %v", err)
	}
}

func TestAfter(t *testing.T) {
	c := clock.NewFake(t0)
	early, _ := clock.After(c, time.Second)
	late, _ := clock.After(c, 3*time.Second)
	stopped, st := clock.After(c, time.Second)
	if !st.Stop() {
		t.Fatal("Stop of a pending After failed")
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
		if !got.Equal(t0.Add(time.Second)) {
			t.Fatalf("fired with %v", got)
		}
	default:
		t.Fatal("did not fire when due")
	}
	select {
	case <-late:
		t.Fatal("late timer fired")
	case <-stopped:
		t.Fatal("stopped timer fired")
	default:
	}
	c.Advance(time.Hour)
	select {
	case <-late:
	default:
		t.Fatal("late timer did not fire")
	}
	if c.Pending() != 0 {
		t.Fatalf("pending %d", c.Pending())
	}
}

func TestSleep(t *testing.T) {
	c := clock.NewFake(t0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- clock.Sleep(ctx, c, time.Minute) }()
	wait, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := c.WaitForTimer(wait, time.Minute); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if err := <-errc; err != nil {
		t.Fatalf("Sleep: %v", err)
	}
	go func() { errc <- clock.Sleep(ctx, c, time.Minute) }()
	if err := c.WaitForTimer(wait, time.Minute); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep after cancel: %v", err)
	}
	if c.Pending() != 0 {
		t.Fatal("canceled Sleep left its timer pending")
	}
}

func TestReal(t *testing.T) {
	c := clock.Real()
	before := time.Now()
	if now := c.Now(); now.Before(before) {
		t.Fatalf("Real().Now() %v before time.Now() %v", now, before)
	}
	ch, _ := clock.After(c, 0)
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("After(0) on the real clock did not fire")
	}
	if tm := c.AfterFunc(time.Hour, func() {}); !tm.Stop() {
		t.Fatal("Stop of a pending real timer failed")
	}
}
