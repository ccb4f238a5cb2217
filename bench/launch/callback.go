package launch

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/coterie-mpc/coterie/callback"
)

// The callback handler's files under Config.Dir.
const (
	cbPolicy    = "callback-policy.yaml"
	cbKey       = "callback-handler.pem"
	cbPublic    = "callback-handler-public.pem"
	cbCosigner  = "callback-cosigner-public.pem"
	cbLog       = "callback.log"
	cbKeyFormat = callback.KeyTypeEC
)

// prepareCallback writes the handler's policy and key, and picks its
// address, so that the nodes' configs can name them before it runs.
func (c *Cluster) prepareCallback() error {
	if _, err := callback.ParsePolicy([]byte(c.cfg.CallbackPolicy)); err != nil {
		return fmt.Errorf("%w: CallbackPolicy: %w", ErrConfig, err)
	}
	key, err := callback.GenerateKey(cbKeyFormat)
	if err != nil {
		return err
	}
	priv, err := callback.MarshalPrivateKeyPEM(key)
	if err != nil {
		return err
	}
	pub, err := callback.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{cbPolicy: []byte(c.cfg.CallbackPolicy), cbKey: priv, cbPublic: pub} {
		if err := os.WriteFile(filepath.Join(c.cfg.Dir, name), b, 0o600); err != nil {
			return err
		}
	}
	c.cbListen, err = c.freeAddr()
	return err
}

// callbackConfig is the callback section of a node's config: empty
// without a handler.
func (c *Cluster) callbackConfig() string {
	if c.cbListen == "" {
		return ""
	}
	// A RETRY answer is asked again after retry_interval: 3 minutes by
	// default, far beyond a bench's time scale.
	return fmt.Sprintf(`callback:
  url: "http://%s"
  handler_public_key: %q
  require_request_token_hash: true
  retry_interval: 1s
`, c.cbListen, filepath.Join(c.cfg.Dir, cbPublic))
}

// startCallback runs `coterie callback serve`, verifying requests with the
// cluster's callback key, and waits until it listens.
func (c *Cluster) startCallback(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	pem, err := c.Nodes[0].Admin.CallbackPublicKey(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("launch: the cluster's callback key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.cfg.Dir, cbCosigner), pem, 0o644); err != nil {
		return err
	}
	c.CallbackLog = filepath.Join(c.cfg.Dir, cbLog)
	c.cb, err = StartProc("callback", c.CallbackLog, c.cfg.Binary, "callback", "serve",
		"--policy", filepath.Join(c.cfg.Dir, cbPolicy), "--key", filepath.Join(c.cfg.Dir, cbKey),
		"--listen", c.cbListen, "--cosigner-key", filepath.Join(c.cfg.Dir, cbCosigner))
	if err != nil {
		return err
	}
	return c.wait(ctx, "the callback handler to listen", []*Proc{c.cb}, func(ctx context.Context) bool {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.cbListen)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}
