package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
)

// Direction names the way of the bytes a toxic acts on, seen from the
// client that dialed the link.
type Direction int

const (
	// Downstream is the bytes from the link's target back to the client.
	Downstream Direction = iota
	// Upstream is the bytes from the client to the link's target.
	Upstream
)

// String returns toxiproxy's name of d.
func (d Direction) String() string {
	if d == Upstream {
		return "upstream"
	}
	return "downstream"
}

// Link is an in-process TCP proxy on 127.0.0.1 in front of one listener,
// with toxics that delay, throttle or cut what crosses it. Its methods are
// safe for concurrent use.
type Link struct {
	// Name says which listener the link fronts, such as "n2" or
	// "workspace".
	Name string

	mu    sync.Mutex
	proxy *toxiproxy.Proxy
	seq   int
}

// newLink starts a proxy named name on a free loopback port, forwarding to
// upstream.
func newLink(srv *toxiproxy.ApiServer, name, upstream string) (*Link, error) {
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("launch: proxy %s: %w", name, err)
	}
	return &Link{Name: name, proxy: p}, nil
}

// Addr returns the address clients dial: the proxy's, which stays the same
// across Cut and Heal.
func (l *Link) Addr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.proxy.Listen
}

// AddLatency delays every chunk in dir by latency, plus or minus jitter,
// and returns the toxic's name for RemoveToxic.
func (l *Link) AddLatency(dir Direction, latency, jitter time.Duration) (string, error) {
	return l.addToxic("latency", dir, map[string]any{"latency": latency.Milliseconds(), "jitter": jitter.Milliseconds()})
}

// AddBandwidth limits the bytes in dir to kbps kilobytes per second, and
// returns the toxic's name for RemoveToxic.
func (l *Link) AddBandwidth(dir Direction, kbps int64) (string, error) {
	return l.addToxic("bandwidth", dir, map[string]any{"rate": kbps})
}

// Blackhole drops every byte across the link in both directions, on open
// connections and new ones, until ResetToxics: the target looks hung or
// partitioned away, as no connection is refused. Cut, by contrast, makes
// it look gone (its port refuses connections), which the cluster treats
// as a dead process.
func (l *Link) Blackhole() error {
	for _, dir := range []Direction{Upstream, Downstream} {
		// toxiproxy's timeout toxic with timeout 0 holds the data and
		// never closes the connection.
		if _, err := l.addToxic("timeout", dir, map[string]any{"timeout": 0}); err != nil {
			return err
		}
	}
	return nil
}

func (l *Link) addToxic(kind string, dir Direction, attrs map[string]any) (string, error) {
	l.mu.Lock()
	l.seq++
	name := fmt.Sprintf("%s-%s-%d", kind, dir, l.seq)
	l.mu.Unlock()
	body, err := json.Marshal(map[string]any{"name": name, "type": kind, "stream": dir.String(), "toxicity": 1.0, "attributes": attrs})
	if err != nil {
		return "", err
	}
	if _, err := l.proxy.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		return "", fmt.Errorf("launch: %s on %s: %w", kind, l.Name, err)
	}
	return name, nil
}

// RemoveToxic removes the toxic named name.
func (l *Link) RemoveToxic(ctx context.Context, name string) error {
	if err := l.proxy.Toxics.RemoveToxic(ctx, name); err != nil {
		return fmt.Errorf("launch: remove %s from %s: %w", name, l.Name, err)
	}
	return nil
}

// ResetToxics removes every toxic of the link.
func (l *Link) ResetToxics(ctx context.Context) { l.proxy.Toxics.ResetToxics(ctx) }

// Cut closes every connection across the link and refuses new ones until
// Heal: the target is unreachable through it.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.proxy.Stop()
}

// Heal accepts connections again on the same address after Cut.
func (l *Link) Heal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.proxy.Enabled {
		return nil
	}
	if err := l.proxy.Start(); err != nil {
		return fmt.Errorf("launch: heal %s: %w", l.Name, err)
	}
	return nil
}

// close stops the proxy for good.
func (l *Link) close() { l.Cut() }
