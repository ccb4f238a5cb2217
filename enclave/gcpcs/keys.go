package gcpcs

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/coterie-mpc/coterie/clock"
)

const (
	// maxKeysBody bounds the issuer's OpenID configuration and key set.
	maxKeysBody = 1 << 20
	// refetchInterval is how often an unknown kid may trigger a fetch, so
	// that tokens naming made-up keys cannot make a node hammer the issuer.
	refetchInterval = time.Minute
)

// keySet is the issuer's signing keys, fetched through its OpenID
// configuration and cached on the clock. It is safe for concurrent use.
type keySet struct {
	issuer string
	client *http.Client
	clock  clock.Clock
	ttl    time.Duration

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey
	fetchedAt time.Time
	triedAt   time.Time
}

// key returns the issuer's key kid, fetching the keys when the cache is
// older than ttl or kid is unknown, at most once per refetchInterval
// whatever the outcome, so that neither made-up kids nor a failing issuer
// make a node hammer it; between fetches, and when one fails, a cached key
// still serves. It returns ErrKeysUnavailable when no cached key serves and
// a needed fetch fails or must wait, and ErrBadSignature for a kid the
// issuer does not have.
func (s *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	k, ok := s.keys[kid]
	stale := s.keys == nil || now.Sub(s.fetchedAt) >= s.ttl
	if !stale && ok {
		return k, nil
	}
	if s.triedAt.IsZero() || now.Sub(s.triedAt) >= refetchInterval {
		s.triedAt = now
		keys, err := s.fetch(ctx)
		switch {
		case err == nil:
			s.keys, s.fetchedAt = keys, now
		case ok:
			return k, nil // the issuer is down: the cached key serves
		default:
			return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
		}
	} else if s.keys == nil {
		return nil, fmt.Errorf("%w: the last fetch failed less than %s ago", ErrKeysUnavailable, refetchInterval)
	}
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: the issuer has no key %q", ErrBadSignature, kid)
}

// fetch reads the issuer's OpenID configuration, then its key set.
func (s *keySet) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	var conf struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := s.get(ctx, strings.TrimSuffix(s.issuer, "/")+"/.well-known/openid-configuration", &conf); err != nil {
		return nil, err
	}
	if conf.Issuer != s.issuer {
		return nil, fmt.Errorf("the OpenID configuration names issuer %q, want %q", conf.Issuer, s.issuer)
	}
	if !strings.HasPrefix(conf.JWKSURI, "https://") {
		return nil, fmt.Errorf("jwks_uri %q is not https", conf.JWKSURI)
	}
	var set jose.JSONWebKeySet
	if err := s.get(ctx, conf.JWKSURI, &set); err != nil {
		return nil, err
	}
	keys := make(map[string]*rsa.PublicKey)
	for _, k := range set.Keys {
		if pub, ok := k.Key.(*rsa.PublicKey); ok && k.KeyID != "" && (k.Use == "" || k.Use == "sig") {
			keys[k.KeyID] = pub
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the key set at %s has no RSA signing key", conf.JWKSURI)
	}
	return keys, nil
}

func (s *keySet) get(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysBody))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %v", url, err)
	}
	return nil
}
