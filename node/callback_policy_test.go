package node

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCallbackHandlerIsTheClusters: the first start records the node's
// callback handler as the cluster's; a node whose config names another
// handler, or none (which would approve every request by itself), refuses
// to serve, and says what the cluster has and what it has.
func TestCallbackHandlerIsTheClusters(t *testing.T) {
	dir := t.TempDir()
	writeHandlerKey(t, filepath.Join(dir, "handler.pem"))
	writeHandlerKey(t, filepath.Join(dir, "other.pem"))
	cfg := testConfig(t, dir)
	cfg.Callback.URL = "http://127.0.0.1:9/cb"
	cfg.Callback.HandlerPublicKey = filepath.Join(dir, "handler.pem")
	n := startNode(t, cfg)
	url, key, ok := n.cluster.FSM().Callback()
	if !ok || url != cfg.Callback.URL || len(key) == 0 {
		t.Fatalf("recorded handler %q %x %v", url, key, ok)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	for name, edit := range map[string]func(*Config){
		"no handler":      func(c *Config) { c.Callback.URL, c.Callback.HandlerPublicKey = "", "" },
		"another key":     func(c *Config) { c.Callback.HandlerPublicKey = filepath.Join(dir, "other.pem") },
		"another address": func(c *Config) { c.Callback.URL = "http://127.0.0.1:10/cb" },
	} {
		t.Run(name, func(t *testing.T) {
			c := cfg
			edit(&c)
			n, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := n.Start(ctx); err != nil {
				t.Fatal(err)
			}
			code, h := n.Health()
			if code != HealthUnavailable || !strings.Contains(h.Reason, ErrCallbackMismatch.Error()) || !strings.Contains(h.Reason, cfg.Callback.URL) {
				t.Fatalf("health %d %+v, want 503 naming the cluster's handler", code, h)
			}
			if why, halted := n.serve.(*actorServer).sys.Halted(); !halted || !strings.Contains(why, "callback handler") {
				t.Fatalf("the actors sign: %q %v", why, halted)
			}
		})
	}
	// An operator moves the cluster to another handler through a node
	// whose config names it; restarted, that node signs, and one with the
	// old config no longer does.
	moved := cfg
	moved.Callback.URL = "http://127.0.0.1:10/cb"
	n = startNode(t, moved)
	ac, err := NewAdminClient(moved)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := ac.Callback(context.Background(), true); err != nil || !l.ThisNode || l.URL != moved.Callback.URL {
		t.Fatalf("callback --set: %+v, %v", l, err)
	}
	n.Close()
	n = startNode(t, moved)
	if code, h := n.Health(); code != HealthServing {
		t.Fatalf("health after the move %d %+v", code, h)
	}
	n.Close()
	n = startNode(t, cfg)
	if code, _ := n.Health(); code != HealthUnavailable {
		t.Fatalf("the old handler's node: health %d, want 503", code)
	}
}
