package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
)

// ErrCallbackMismatch is the reason a node does not sign when its callback
// settings are not the cluster's: it would ask another handler, or none
// and approve everything by itself (I5). Such a node starts with its
// signing halted (/v1/health answers 503 with this reason) until its
// config names the cluster's handler (`node cluster callback` shows it)
// and it restarts.
var ErrCallbackMismatch = errors.New("node: this node's callback handler is not the cluster's")

// callbackHandler returns this node's callback handler as the cluster
// records it: the URL and the handler's public key (PKIX DER), or neither.
func (n *Node) callbackHandler() (string, []byte, error) {
	if n.cfg.Callback.URL == "" {
		return "", nil, nil
	}
	key, err := loadHandlerKey(n.cfg.Callback.HandlerPublicKey)
	if err != nil {
		return "", nil, fmt.Errorf("node: callback.handler_public_key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", nil, fmt.Errorf("node: callback.handler_public_key: %w", err)
	}
	return n.cfg.Callback.URL, der, nil
}

// describeHandler names a handler for an error: its URL and a hash of its
// key, or "none".
func describeHandler(url string, key []byte) string {
	if url == "" {
		return "none (every request approved automatically)"
	}
	return fmt.Sprintf("%s with key sha256:%x", url, sha256.Sum256(key))
}

// checkCallback compares this node's callback handler with the cluster's,
// and reports whether the cluster has one recorded.
func (n *Node) checkCallback() (bool, error) {
	url, key, ok := n.cluster.FSM().Callback()
	if !ok {
		return false, nil
	}
	mine, mineKey, err := n.callbackHandler()
	if err != nil {
		return true, err
	}
	if url != mine || !bytes.Equal(key, mineKey) {
		return true, fmt.Errorf("%w: the cluster asks %s; this node's config says %s", ErrCallbackMismatch,
			describeHandler(url, key), describeHandler(mine, mineKey))
	}
	return true, nil
}

// ensureCallbackHandler makes sure the cluster records a callback handler
// and that it is this node's: the leader records its own when there is
// none yet (the cluster's first start), a follower waits for the record.
func (n *Node) ensureCallbackHandler(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if ok, err := n.checkCallback(); ok || err != nil {
			return err
		}
		if n.cluster.IsLeader() {
			url, key, err := n.callbackHandler()
			if err != nil {
				return err
			}
			err = n.cluster.SetCallback(ctx, url, key)
			switch {
			case err == nil:
				n.log.Info("cluster callback handler recorded", "handler", describeHandler(url, key))
			case !errors.Is(err, cluster.ErrUncertain):
				return fmt.Errorf("node: record the cluster's callback handler: %w", err)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node: waiting for the cluster's callback handler: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
