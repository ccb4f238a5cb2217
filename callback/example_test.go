package callback_test

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http/httptest"

	"github.com/coterie-mpc/coterie/callback"
)

// Example runs the reference server with a small policy and asks it about
// two transactions, as a co-signer node would.
func Example() {
	// The node's callback key signs requests; the handler's key signs
	// answers. Each side knows the other's public key.
	nodeSigner, _ := callback.GenerateKey(callback.KeyTypeRSA)
	nodeKey := nodeSigner.(*rsa.PrivateKey)
	handlerKey, _ := callback.GenerateKey(callback.KeyTypeEC)

	policy, err := callback.ParsePolicy([]byte(`
transactions:
  maxAmount: {BTC: "0.5"}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	scfg := callback.DefaultServerConfig()
	scfg.Policy = policy
	scfg.Key = handlerKey
	scfg.CosignerKeys = []*rsa.PublicKey{&nodeKey.PublicKey}
	server, err := callback.NewServer(scfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ts := httptest.NewServer(server)
	defer ts.Close()

	cfg := callback.DefaultConfig()
	cfg.URL = ts.URL
	cfg.HandlerKey = handlerKey.Public()
	cfg.SigningKey = nodeKey
	client, err := callback.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	// Ask makes one attempt; on a RETRY answer or an error for which
	// callback.Retryable is true, the caller waits cfg.Retry.Next and
	// asks again.
	for _, amount := range []string{"0.25", "0.75"} {
		req := &callback.TxRequest{RequestID: "req-" + amount, Asset: "BTC", AmountStr: amount}
		d, err := client.Ask(context.Background(), req)
		fmt.Println(d, err)
	}
	// Output:
	// APPROVE <nil>
	// REJECT (amount 0.75 BTC exceeds the maximum 0.5) <nil>
}
