package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// raceServer is a userServer that, like the actors, refuses a user it
// serves already, and holds each add until a second one arrives (or a
// moment passes), so that two adds of one user overlap if they can.
type raceServer struct {
	mu      sync.Mutex
	served  map[string]bool
	arrived chan struct{}
}

func (s *raceServer) add(u *User) error {
	select {
	case s.arrived <- struct{}{}:
	case <-time.After(200 * time.Millisecond):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.served[u.RecordID] {
		return fmt.Errorf("user already added: %s", u.RecordID)
	}
	s.served[u.RecordID] = true
	return nil
}

func (s *raceServer) status() any                               { return nil }
func (s *raceServer) stages() map[string]*hdrhistogram.Snapshot { return nil }
func (s *raceServer) halt(string)                               {}
func (s *raceServer) stop(ctx context.Context) error            { return nil }

// TestAddUserOnce adds one user from two goroutines at once, as Pair and
// the watch of newly paired users do: both succeed, and the user is
// served once.
func TestAddUserOnce(t *testing.T) {
	srv := &raceServer{served: map[string]bool{}, arrived: make(chan struct{})}
	n := &Node{users: map[string]*User{}, serve: srv, log: testLogger(t, slog.LevelInfo)}
	u := &User{RecordID: "ws-1/u-1", Info: UserInfo{ID: "u-1", WorkspaceID: "ws-1"}}
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- n.addUser(u) }()
	}
	for _, err := range []error{<-errs, <-errs} {
		if err != nil {
			t.Error(err)
		}
	}
	if len(n.users) != 1 || !srv.served[u.RecordID] {
		t.Fatalf("users %v, served %v", n.users, srv.served)
	}
}
