package vsock

import (
	"context"
	"errors"
	"net"
	"testing"
)

// TestDialNoListener: with no enclave parent here, Dial fails with an
// error (no vsock, or no listener) rather than hanging or panicking.
func TestDialNoListener(t *testing.T) {
	c, err := Dial(context.Background(), Addr{CID: ParentCID, Port: 8000})
	if err == nil {
		c.Close()
		t.Skip("a vsock listener answered on this machine")
	}
	t.Logf("Dial = %v", err)
}

func TestDialCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, Addr{CID: ParentCID, Port: 8000}); err != context.Canceled {
		t.Fatalf("Dial(canceled) = %v, want context.Canceled", err)
	}
}

func TestAddrString(t *testing.T) {
	if got := (Addr{CID: 3, Port: 8000}).String(); got != "vsock://3:8000" {
		t.Fatalf("String = %q", got)
	}
}

// TestListenClose: a listener binds (no vsock peer can connect here), and
// Close ends a blocked Accept with net.ErrClosed.
func TestListenClose(t *testing.T) {
	ln, err := Listen(47123)
	if err != nil {
		t.Skipf("no vsock listener on this machine: %v", err)
	}
	if got := ln.Addr().String(); got != "vsock://:47123" {
		t.Errorf("Addr = %s", got)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		done <- err
	}()
	ln.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
	}
}
