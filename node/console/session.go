package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

// A console session is a random value in an HttpOnly cookie; the node
// keeps the SHA-256 of it, the session's expiry and its CSRF token in
// memory. The cookie never holds the admin token, a session ends at
// logout or expiry (and when the node restarts), and whoever reads the
// node's memory learns no cookie.
type session struct {
	expires time.Time
	csrf    string
}

// sessions is the bounded table of live console sessions. It is safe for
// concurrent use.
type sessions struct {
	ttl   time.Duration
	max   int
	clock clock.Clock

	mu   sync.Mutex
	live map[[sha256.Size]byte]session
}

func newSessions(ttl time.Duration, maxSessions int, c clock.Clock) *sessions {
	return &sessions{ttl: ttl, max: maxSessions, clock: c, live: map[[sha256.Size]byte]session{}}
}

// randomValue returns 32 random bytes, base64url.
func randomValue() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// create starts a session and returns its cookie value. When
// the table is full, the session closest to its expiry ends first.
func (s *sessions) create() (string, error) {
	value, err := randomValue()
	if err != nil {
		return "", err
	}
	csrf, err := randomValue()
	if err != nil {
		return "", err
	}
	now := s.clock.Now()
	expires := now.Add(s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	for len(s.live) >= s.max {
		var oldest [sha256.Size]byte
		first := true
		for k, v := range s.live {
			if first || v.expires.Before(s.live[oldest].expires) {
				oldest, first = k, false
			}
		}
		delete(s.live, oldest)
	}
	s.live[sha256.Sum256([]byte(value))] = session{expires: expires, csrf: csrf}
	return value, nil
}

func (s *sessions) pruneLocked(now time.Time) {
	for k, v := range s.live {
		if !now.Before(v.expires) {
			delete(s.live, k)
		}
	}
}

// lookup returns the live session of a cookie value.
func (s *sessions) lookup(value string) (session, bool) {
	if value == "" {
		return session{}, false
	}
	k := sha256.Sum256([]byte(value))
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.live[k]
	if !ok || !now.Before(v.expires) {
		delete(s.live, k)
		return session{}, false
	}
	return v, true
}

// end ends the session of a cookie value if csrf is its CSRF token, and
// reports whether it did.
func (s *sessions) end(value, csrf string) bool {
	v, ok := s.lookup(value)
	if !ok || subtle.ConstantTimeCompare([]byte(csrf), []byte(v.csrf)) != 1 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, sha256.Sum256([]byte(value)))
	return true
}
