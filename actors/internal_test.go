package actors

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.Cluster, valid.Cipher = &cluster.Cluster{}, &keyring.Keyring{} // never called by Validate
	var err error
	if valid.Engine, err = mpc.New(mpc.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if err := valid.Validate(); err != nil {
		t.Fatalf("DefaultConfig with the parts: %v", err)
	}
	tests := []struct {
		name   string
		adjust func(*Config)
		want   []string
	}{
		{"missing parts", func(c *Config) { c.Cluster, c.Cipher, c.Engine = nil, nil, nil }, []string{"Cluster is required", "Cipher is required", "Engine is required"}},
		{"capacity", func(c *Config) { c.MaxSessions = 0; c.PresignWorkers = 0 }, []string{"MaxSessions", "PresignWorkers"}},
		{"slow path", func(c *Config) { c.SlowPathWorkers = 0 }, []string{"SlowPathWorkers"}},
		{"pool", func(c *Config) { c.Pool.MinDepth = 5; c.Pool.MaxDepth = 2; c.Pool.Alpha = 2; c.Pool.Headroom = 0.5 }, []string{"MinDepth <= MaxDepth", "Alpha", "Headroom"}},
		{"supervision", func(c *Config) { c.Sessions.Window = 0; c.Services.MaxBackoff = -1 }, []string{"Sessions: the window", "Services: need 0 <= Backoff"}},
		{"timing", func(c *Config) { c.PollBackoffMax = 0; c.CallTimeout = 0; c.OnlineAttempts = 0 }, []string{"poll backoff", "CallTimeout", "OnlineAttempts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.adjust(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestUserValidate(t *testing.T) {
	tests := []struct {
		name string
		u    User
		want string
	}{
		{"empty", User{}, "ID is required"},
		{"no keys", User{ID: "u", Workspace: nil, Decider: nil}, "neither a signing key nor an approval key"},
		{"share without key", User{ID: "u", ShareRecordID: "s"}, "SigningKey is required"},
		{"key without share", User{ID: "u", SigningKey: &protocol.WsSigningKey{}}, "ShareRecordID is required"},
		{"bad retry", User{ID: "u", ApprovalRecordID: "a", Retry: callback.Backoff{MaxAttempts: -1}}, "Retry"},
	}
	for _, tt := range tests {
		err := tt.u.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestForecast(t *testing.T) {
	c := PoolConfig{MinDepth: 2, MaxDepth: 32, Headroom: 2}
	tests := []struct {
		rate    float64
		latency time.Duration
		want    int
	}{
		{0, 3 * time.Second, 2},    // idle: the floor
		{1, 3 * time.Second, 6},    // 1/s over 3 s, twice
		{0.1, 2 * time.Second, 2},  // 0.4 rounds up to 1, below the floor
		{100, 3 * time.Second, 32}, // clamped
		{2.5, 2100 * time.Millisecond, 11},
	}
	for _, tt := range tests {
		if got := forecast(tt.rate, tt.latency, c); got != tt.want {
			t.Errorf("forecast(%v, %v) = %d, want %d", tt.rate, tt.latency, got, tt.want)
		}
	}
}

func TestPoolRateEWMA(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Pool.Alpha = 0.5
	p := &presignPool{sys: &System{cfg: cfg}, latency: 2 * time.Second}
	t0 := time.Unix(1000, 0)
	for i := range 20 {
		p.take(t0.Add(time.Duration(i) * 100 * time.Millisecond)) // 10/s
	}
	if p.rate < 9 || p.rate > 11 {
		t.Fatalf("rate %v, want about 10/s", p.rate)
	}
	now := t0.Add(1900 * time.Millisecond)
	if got := p.target(now); got != 32 {
		t.Errorf("target while busy = %d, want the 32 cap (10/s x 2 s x 2)", got)
	}
	// A minute without takes: the rate bound decays to 1/60 s.
	if got := p.target(now.Add(time.Minute)); got != cfg.Pool.MinDepth {
		t.Errorf("target after a minute idle = %d, want the floor %d", got, cfg.Pool.MinDepth)
	}
}

func TestStrategyBackoff(t *testing.T) {
	s := &strategy{cfg: SupervisorConfig{MaxRestarts: 5, Window: time.Minute, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := s.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	clock := clock.NewFake(time.Unix(0, 0))
	s.clock, s.failures = clock, map[string][]time.Time{}
	for i := 1; i <= 3; i++ {
		if n := s.fail("c"); n != i {
			t.Fatalf("failure %d counted %d", i, n)
		}
	}
	clock.Advance(time.Minute) // the window forgets them
	if n := s.fail("c"); n != 1 {
		t.Errorf("after the window: %d failures, want 1", n)
	}
}

// TestStrategyForgetsOldFailures: children that crashed once and then
// finished leave no entry behind once their failures leave the window.
func TestStrategyForgetsOldFailures(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	s := newStrategy("sessions", SupervisorConfig{MaxRestarts: 3, Window: time.Minute}, exhaustedStop, clk, nil, nil, nil)
	for i := range 1000 {
		s.fail(fmt.Sprintf("session-%d", i))
	}
	if n := s.tracked(); n != 1000 {
		t.Fatalf("%d children tracked within the window, want 1000", n)
	}
	clk.Advance(time.Minute)
	s.fail("another")
	if n := s.tracked(); n != 1 {
		t.Errorf("%d children tracked after the window, want 1", n)
	}
}

func TestRetryDelayDoubles(t *testing.T) {
	sys := &System{cfg: DefaultConfig()}
	for n, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
		if got := sys.retryDelay(n + 1); got != want {
			t.Errorf("retryDelay(%d) = %v, want %v", n+1, got, want)
		}
	}
	if got := sys.retryDelay(100); got != sys.cfg.MaxRetryDelay {
		t.Errorf("retryDelay(100) = %v, want the cap %v", got, sys.cfg.MaxRetryDelay)
	}
}

func TestCallbackRequestTransaction(t *testing.T) {
	r := &protocol.WsRequest{Id: "r-1", UserId: "u-1", Kind: protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION,
		Body: &protocol.WsRequest_Transaction{Transaction: &protocol.WsTransaction{
			Asset: "BTC", Amount: "0.25", Fee: "0.0001", Note: "n",
			Source:       &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
			Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "EXCHANGE_ACCOUNT", Id: "7", Address: "bc1q"}, Amount: "0.25"}},
			Digests:      []*protocol.WsDigestToSign{{Digest: make([]byte, 32), DerivationPath: []uint32{44, 0, 1}}},
		}}}
	got, err := callbackRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	tx := got.(*callback.TxRequest)
	if tx.RequestID != "r-1" || tx.SignerID != "u-1" || tx.Operation != "TRANSFER" || tx.AmountStr != "0.25" || tx.Amount == nil || *tx.Amount != 0.25 ||
		tx.DestAddress != "bc1q" || tx.DestType != "EXCHANGE_ACCOUNT" || tx.DestAddressType != "WHITELISTED" || len(tx.RawTx) != 1 ||
		tx.RawTx[0].Payload != strings.Repeat("00", 32) || len(tx.RawTx[0].KeyDerivationPath) != 3 {
		t.Errorf("converted %+v", tx)
	}
}

// TestCallbackRequestAbsentAmounts: an amount the workspace did not give,
// or gave in a form that is not a number, reaches the handler absent
// (null, with its string as given), never as 0.
func TestCallbackRequestAbsentAmounts(t *testing.T) {
	tests := []struct {
		amount  string
		wantNum *float64
	}{
		{"", nil},
		{"lots", nil},
		{"NaN", nil},
		{"1e400", nil},
		{"0", numPtr(0.0)},
		{"1.5", numPtr(1.5)},
	}
	for _, tc := range tests {
		t.Run(tc.amount, func(t *testing.T) {
			r := &protocol.WsRequest{Id: "r-1", UserId: "u-1", Kind: protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION,
				Body: &protocol.WsRequest_Transaction{Transaction: &protocol.WsTransaction{
					Asset: "ETH", Amount: tc.amount,
					Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xabc"}, Amount: tc.amount}},
				}}}
			got, err := callbackRequest(r)
			if err != nil {
				t.Fatal(err)
			}
			tx := got.(*callback.TxRequest)
			d := tx.Destinations[0]
			same := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
			if !same(tx.Amount, tc.wantNum) || !same(d.AmountNative, tc.wantNum) || tx.AmountStr != tc.amount || d.AmountNativeStr != tc.amount {
				t.Fatalf("amount %v %q, destination %v %q; want %v %q", tx.Amount, tx.AmountStr, d.AmountNative, d.AmountNativeStr, tc.wantNum, tc.amount)
			}
		})
	}
}

func numPtr(v float64) *float64 { return &v }

func TestCallbackRequestConfigChange(t *testing.T) {
	r := &protocol.WsRequest{Id: "r-2", UserId: "u-1", Kind: protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE,
		Body: &protocol.WsRequest_ConfigChange{ConfigChange: &protocol.WsConfigChange{
			Type:    protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_USER,
			Payload: &protocol.WsConfigChange_AddUser{AddUser: &protocol.WsAddUser{Email: "a@b.c", Role: "SIGNER"}},
		}}}
	got, err := callbackRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	cc := got.(*callback.ConfigChangeRequest)
	if cc.Type != callback.ConfigAddUser || cc.RequestID != "r-2" || cc.ExtraInfo["email"] != "a@b.c" {
		t.Errorf("converted %+v", cc)
	}
	r.GetConfigChange().Type = protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_UNSPECIFIED
	if _, err := callbackRequest(r); !errors.Is(err, callback.ErrInvalidRequest) {
		t.Errorf("unspecified type: %v", err)
	}
}

// FuzzCallbackRequest feeds the check and the conversion of workspace
// requests (outside input) arbitrary messages: neither panics, a record the
// check passes converts, and what the conversion produces carries the
// request's identity and, for transactions, every digest and path
// unchanged (the round trip back from the hex payload).
func FuzzCallbackRequest(f *testing.F) {
	seed, _ := proto.Marshal(&protocol.WsRequest{Id: "r-1", Kind: protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION,
		Body: &protocol.WsRequest_Transaction{Transaction: &protocol.WsTransaction{Amount: "1e3",
			Digests: []*protocol.WsDigestToSign{{Digest: []byte{1, 2}, DerivationPath: []uint32{1}}}}}})
	f.Add(seed)
	seed, _ = proto.Marshal(&protocol.WsRequest{Id: "r-2", Kind: protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE,
		Body: &protocol.WsRequest_ConfigChange{ConfigChange: &protocol.WsConfigChange{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_EXCHANGE}}})
	f.Add(seed)
	seed, _ = proto.Marshal(&protocol.WsRequest{Id: "r-3", UserId: "u", Kind: protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION,
		Body: &protocol.WsRequest_Transaction{Transaction: &protocol.WsTransaction{Amount: "1",
			Digests: []*protocol.WsDigestToSign{{Digest: make([]byte, 32), DerivationPath: []uint32{44, 60, 0, 0, 1}}}}}})
	f.Add(seed)
	seed, _ = proto.Marshal(&protocol.WsRequest{Id: "r-4", UserId: "u", WorkspaceId: "w", Kind: protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE,
		Body: &protocol.WsRequest_ConfigChange{ConfigChange: configChangeOneTime()}})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &protocol.WsRequest{}
		if proto.Unmarshal(b, r) != nil {
			return
		}
		checkErr := checkRequest(r, r.GetId(), r.GetUserId())
		if checkErr != nil && !errors.Is(checkErr, ErrMalformedRequest) {
			t.Fatalf("check error %v does not wrap ErrMalformedRequest", checkErr)
		}
		got, err := callbackRequest(r)
		if err != nil && checkErr == nil {
			t.Fatalf("the check passed a request the conversion refuses: %v", err)
		}
		if err != nil {
			if !errors.Is(err, callback.ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			return
		}
		if got.ID() != r.GetId() {
			t.Fatalf("id %q, want %q", got.ID(), r.GetId())
		}
		if tx, ok := got.(*callback.TxRequest); ok {
			ds := r.GetTransaction().GetDigests()
			if len(tx.RawTx) != len(ds) {
				t.Fatalf("%d raw txs for %d digests", len(tx.RawTx), len(ds))
			}
			for i, d := range ds {
				back, err := hex.DecodeString(tx.RawTx[i].Payload)
				if err != nil || string(back) != string(d.GetDigest()) || len(tx.RawTx[i].KeyDerivationPath) != len(d.GetDerivationPath()) {
					t.Fatalf("digest %d does not round-trip", i)
				}
			}
		}
	})
}

func configChangeOneTime() *protocol.WsConfigChange {
	return &protocol.WsConfigChange{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS,
		Payload: &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: true}}}
}
