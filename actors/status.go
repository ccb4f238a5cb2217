package actors

import (
	"sort"
	"time"
)

// Status is a snapshot of the actors for the node's /v1/status. It holds
// no secrets.
type Status struct {
	// Users are the API users served, sorted.
	Users []string `json:"users"`
	// Sessions are the running Sessions, sorted by request.
	Sessions []SessionStatus `json:"sessions"`
	// Pools are the PresignPools, sorted by key.
	Pools []PoolStatus `json:"pools"`
	// Capacity is Config.MaxSessions.
	Capacity int `json:"capacity"`
}

// SessionStatus is one running Session.
type SessionStatus struct {
	Request string    `json:"request"`
	User    string    `json:"user"`
	Step    string    `json:"step"`
	Since   time.Time `json:"since"`
	// Incarnation counts the Session's starts: 2 means it crashed and was
	// restarted once.
	Incarnation int `json:"incarnation"`
}

// PoolStatus is one PresignPool.
type PoolStatus struct {
	Key string `json:"key"`
	// Depth is the available presignatures in this node's replica.
	Depth int `json:"depth"`
	// Target is the forecast depth the pool refills to.
	Target int `json:"target"`
	// InFlight is the presign jobs running or queued.
	InFlight int `json:"in_flight"`
	// Refilling says whether refill jobs are running or queued on this
	// node; a full pool is not refilling.
	Refilling bool `json:"refilling"`
	// Failures counts consecutive failed refills; the pool backs off
	// while it is not zero.
	Failures int `json:"failures"`
	// TakesPerSecond and RefillSeconds are the forecast's inputs.
	TakesPerSecond float64 `json:"takes_per_second"`
	RefillSeconds  float64 `json:"refill_seconds"`
}

// Status returns a snapshot of the running actors.
func (s *System) Status() (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case 0:
		return Status{}, ErrNotStarted
	case 2:
		return Status{}, ErrStopped
	}
	st := Status{Capacity: s.cfg.MaxSessions, Users: []string{}, Sessions: []SessionStatus{}, Pools: []PoolStatus{}}
	for id := range s.users {
		st.Users = append(st.Users, id)
	}
	for _, ss := range s.status {
		st.Sessions = append(st.Sessions, ss)
	}
	for _, p := range s.pools {
		st.Pools = append(st.Pools, p)
	}
	sort.Strings(st.Users)
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].Request < st.Sessions[j].Request })
	sort.Slice(st.Pools, func(i, j int) bool { return st.Pools[i].Key < st.Pools[j].Key })
	return st, nil
}

// setSession records a Session's step; actors call it from Receive (it
// takes a short lock only).
func (s *System) setSession(ss SessionStatus) {
	s.mu.Lock()
	s.status[ss.Request] = ss
	s.mu.Unlock()
}

// setPool records a pool's state.
func (s *System) setPool(p PoolStatus) {
	s.mu.Lock()
	s.pools[p.Key] = p
	s.mu.Unlock()
	s.metrics.PoolDepth.WithLabelValues(p.Key).Set(float64(p.Depth))
}
