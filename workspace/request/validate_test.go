package request

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/protocol"
	"google.golang.org/protobuf/proto"
)

func goodTx() *protocol.WsTransaction {
	return &protocol.WsTransaction{
		Asset:  "ETH",
		Amount: "1.5",
		Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{
			{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xabc"}},
		},
		Note: "payout",
		Fee:  "0.001",
	}
}

func TestValidateTransaction(t *testing.T) {
	cases := []struct {
		name string
		mut  func(tx *protocol.WsTransaction)
		want string // a fragment of the error, "" for valid
	}{
		{"valid", func(*protocol.WsTransaction) {}, ""},
		{"valid with digests", func(tx *protocol.WsTransaction) {
			tx.Digests = []*protocol.WsDigestToSign{{Digest: make([]byte, 32), DerivationPath: []uint32{44, 60, 0, 0, 1}}}
		}, ""},
		{"valid split", func(tx *protocol.WsTransaction) {
			tx.Destinations = []*protocol.WsDestination{
				{Peer: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "2"}, Amount: "1"},
				{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "x"}, Amount: "0.5"},
			}
		}, ""},
		{"lowercase asset", func(tx *protocol.WsTransaction) { tx.Asset = "eth" }, "asset"},
		{"zero amount", func(tx *protocol.WsTransaction) { tx.Amount = "0" }, "amount must be positive"},
		{"negative amount", func(tx *protocol.WsTransaction) { tx.Amount = "-1" }, "not a decimal"},
		{"exponent amount", func(tx *protocol.WsTransaction) { tx.Amount = "1e9" }, "not a decimal"},
		{"leading zero", func(tx *protocol.WsTransaction) { tx.Amount = "01" }, "not a decimal"},
		{"bad fee", func(tx *protocol.WsTransaction) { tx.Fee = "x" }, "fee"},
		{"no source", func(tx *protocol.WsTransaction) { tx.Source = nil }, "source must be"},
		{"source not vault", func(tx *protocol.WsTransaction) { tx.Source.Type = "EXCHANGE_ACCOUNT" }, "source must be"},
		{"source id not number", func(tx *protocol.WsTransaction) { tx.Source.Id = "a" }, "vault account ID"},
		{"source id hardened", func(tx *protocol.WsTransaction) { tx.Source.Id = "2147483648" }, "vault account ID"},
		{"no destination", func(tx *protocol.WsTransaction) { tx.Destinations = nil }, "at least one destination"},
		{"too many destinations", func(tx *protocol.WsTransaction) {
			for range MaxDestinations {
				tx.Destinations = append(tx.Destinations, tx.Destinations[0])
			}
		}, "more than"},
		{"unknown peer type", func(tx *protocol.WsTransaction) { tx.Destinations[0].Peer.Type = "MOON" }, "unknown type"},
		{"one-time without address", func(tx *protocol.WsTransaction) { tx.Destinations[0].Peer.Address = "" }, "address is required"},
		{"amounts do not add up", func(tx *protocol.WsTransaction) {
			tx.Destinations = []*protocol.WsDestination{
				{Peer: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "2"}, Amount: "1"},
				{Peer: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "3"}, Amount: "1"},
			}
		}, "add up"},
		{"some amounts", func(tx *protocol.WsTransaction) {
			tx.Destinations = []*protocol.WsDestination{
				{Peer: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "2"}, Amount: "1.5"},
				{Peer: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "3"}},
			}
		}, "either every"},
		{"long note", func(tx *protocol.WsTransaction) { tx.Note = strings.Repeat("n", MaxNoteLen+1) }, "note is longer"},
		{"control in note", func(tx *protocol.WsTransaction) { tx.Note = "a\x00b" }, "control"},
		{"bad utf8 note", func(tx *protocol.WsTransaction) { tx.Note = "\xff" }, "UTF-8"},
		{"unknown operation", func(tx *protocol.WsTransaction) { tx.Operation = "BURN" }, "operation"},
		{"short digest", func(tx *protocol.WsTransaction) {
			tx.Digests = []*protocol.WsDigestToSign{{Digest: make([]byte, 31), DerivationPath: []uint32{1}}}
		}, "32 bytes"},
		{"no path", func(tx *protocol.WsTransaction) {
			tx.Digests = []*protocol.WsDigestToSign{{Digest: make([]byte, 32)}}
		}, "derivation path"},
		{"hardened path", func(tx *protocol.WsTransaction) {
			tx.Digests = []*protocol.WsDigestToSign{{Digest: make([]byte, 32), DerivationPath: []uint32{1 << 31}}}
		}, "hardened"},
		{"valid raw", func(tx *protocol.WsTransaction) {
			tx.Operation, tx.Amount, tx.Destinations = "RAW", "", nil
			tx.Digests = []*protocol.WsDigestToSign{{Digest: make([]byte, 32), DerivationPath: []uint32{44, 60, 0, 0, 7}}}
		}, ""},
		{"valid raw with a zero amount", func(tx *protocol.WsTransaction) {
			tx.Operation, tx.Amount, tx.Destinations = "RAW", "0", nil
			tx.Digests = []*protocol.WsDigestToSign{{Digest: make([]byte, 32), DerivationPath: []uint32{1}}}
		}, ""},
		{"raw without digests", func(tx *protocol.WsTransaction) { tx.Operation = "RAW" }, "RAW transaction names the digests"},
		{"raw with a bad amount", func(tx *protocol.WsTransaction) {
			tx.Operation, tx.Amount = "RAW", "-1"
			tx.Digests = []*protocol.WsDigestToSign{{Digest: make([]byte, 32), DerivationPath: []uint32{1}}}
		}, "not a decimal"},
		{"transfer without amount", func(tx *protocol.WsTransaction) { tx.Amount = "" }, "not a decimal"},
		{"too many digests", func(tx *protocol.WsTransaction) {
			for range MaxDigests + 1 {
				tx.Digests = append(tx.Digests, &protocol.WsDigestToSign{Digest: make([]byte, 32), DerivationPath: []uint32{1}})
			}
		}, "more than 16 digests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx := goodTx()
			c.mut(tx)
			err := ValidateTransaction(tx)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestFillAmounts(t *testing.T) {
	one := goodTx()
	FillAmounts(one)
	if got := one.Destinations[0].Amount; got != "1.5" {
		t.Fatalf("the only destination got amount %q, want the transaction's 1.5", got)
	}
	split := goodTx()
	split.Destinations = []*protocol.WsDestination{
		{Peer: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "2"}, Amount: "1"},
		{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "x"}, Amount: "0.5"},
	}
	FillAmounts(split)
	if split.Destinations[0].Amount != "1" || split.Destinations[1].Amount != "0.5" {
		t.Fatalf("stated amounts changed: %v", split.Destinations)
	}
	raw := &protocol.WsTransaction{Operation: "RAW", Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "x"}}}}
	FillAmounts(raw)
	if raw.Destinations[0].Amount != "" {
		t.Fatalf("a transaction without an amount gave its destination %q", raw.Destinations[0].Amount)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := ValidateSubmitTransaction(&protocol.WsSubmitTransactionRequest{
		UserId:      "bad user",
		Transaction: &protocol.WsTransaction{Asset: "x", Amount: "y"},
	})
	for _, want := range []string{"user ID", "asset", "amount", "source", "destination"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %q", err, want)
		}
	}
}

// allConfigChanges returns a valid config change of each type.
func allConfigChanges() []*protocol.WsConfigChange {
	return []*protocol.WsConfigChange{
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_EXCHANGE, Payload: &protocol.WsConfigChange_Exchange{Exchange: &protocol.WsExchangeAccount{ExchangeType: "BINANCE", Name: "main"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_FIAT_ACCOUNT, Payload: &protocol.WsConfigChange_FiatAccount{FiatAccount: &protocol.WsFiatAccount{Provider: "bank", Name: "ops", AccountNumber: "DE89", Currency: "EUR"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_UNMANAGED_WALLET, Payload: &protocol.WsConfigChange_UnmanagedWallet{UnmanagedWallet: &protocol.WsUnmanagedWallet{Name: "cold", Asset: "BTC", Address: "bc1q"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_NETWORK_CONNECTION, Payload: &protocol.WsConfigChange_NetworkConnection{NetworkConnection: &protocol.WsNetworkConnection{PeerNetworkId: "n-1", Name: "desk"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_USER, Payload: &protocol.WsConfigChange_AddUser{AddUser: &protocol.WsAddUser{Email: "a@b.c", Role: "SIGNER"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_CHANGE_QUORUM_THRESHOLD, Payload: &protocol.WsConfigChange_QuorumChange{QuorumChange: &protocol.WsQuorumChange{OldThreshold: 2, NewThreshold: 3, Admins: 5}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_RE_ENROLL_DEVICE, Payload: &protocol.WsConfigChange_DeviceReEnroll{DeviceReEnroll: &protocol.WsDeviceReEnroll{UserEmail: "a@b.c", DeviceId: "d-1"}}},
		{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS, Payload: &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: true}}},
	}
}

func TestValidateConfigChange(t *testing.T) {
	all := allConfigChanges()
	if len(all) != len(payloadTypes) {
		t.Fatalf("%d examples for %d types", len(all), len(payloadTypes))
	}
	for _, c := range all {
		if err := ValidateConfigChange(c); err != nil {
			t.Errorf("%s: %v", TypeName(c.Type), err)
		}
		if typ, err := ParseType(strings.ToLower(TypeName(c.Type))); err != nil || typ != c.Type {
			t.Errorf("ParseType(%s) = %v, %v", TypeName(c.Type), typ, err)
		}
	}
	bad := map[string]*protocol.WsConfigChange{
		"nil":              nil,
		"no type":          {Payload: all[0].Payload},
		"unknown type":     {Type: 99, Payload: all[0].Payload},
		"payload mismatch": {Type: all[1].Type, Payload: all[0].Payload},
		"no payload":       {Type: all[0].Type},
		"empty exchange":   {Type: all[0].Type, Payload: &protocol.WsConfigChange_Exchange{Exchange: &protocol.WsExchangeAccount{}}},
		"bad currency":     {Type: all[1].Type, Payload: &protocol.WsConfigChange_FiatAccount{FiatAccount: &protocol.WsFiatAccount{Provider: "b", Name: "n", AccountNumber: "1", Currency: "euro"}}},
		"wallet no addr":   {Type: all[2].Type, Payload: &protocol.WsConfigChange_UnmanagedWallet{UnmanagedWallet: &protocol.WsUnmanagedWallet{Name: "n", Asset: "BTC"}}},
		"email no at":      {Type: all[4].Type, Payload: &protocol.WsConfigChange_AddUser{AddUser: &protocol.WsAddUser{Email: "ab", Role: "R"}}},
		"quorum too high":  {Type: all[5].Type, Payload: &protocol.WsConfigChange_QuorumChange{QuorumChange: &protocol.WsQuorumChange{OldThreshold: 1, NewThreshold: 6, Admins: 5}}},
		"quorum unchanged": {Type: all[5].Type, Payload: &protocol.WsConfigChange_QuorumChange{QuorumChange: &protocol.WsQuorumChange{OldThreshold: 2, NewThreshold: 2, Admins: 5}}},
		"device no id":     {Type: all[6].Type, Payload: &protocol.WsConfigChange_DeviceReEnroll{DeviceReEnroll: &protocol.WsDeviceReEnroll{UserEmail: "a@b"}}},
	}
	for name, c := range bad {
		if err := ValidateConfigChange(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := ParseType("NOPE"); !errors.Is(err, ErrInvalid) {
		t.Error("ParseType accepted NOPE")
	}
}

func TestValidateReports(t *testing.T) {
	sig := make([]byte, 64)
	if err := ValidateSignature(&protocol.WsSubmitSignatureRequest{RequestId: "r-1", Signature: sig}); err != nil {
		t.Error(err)
	}
	if err := ValidateSignature(&protocol.WsSubmitSignatureRequest{RequestId: "r-1", Signature: sig[:63]}); !errors.Is(err, ErrInvalid) {
		t.Error("short signature accepted")
	}
	if err := ValidateSignature(&protocol.WsSubmitSignatureRequest{RequestId: "r/1", Signature: sig}); !errors.Is(err, ErrInvalid) {
		t.Error("bad request ID accepted")
	}
	if err := ValidateApproval(&protocol.WsSubmitApprovalRequest{RequestId: "r-1", Signature: sig}); err != nil {
		t.Error(err)
	}
	if err := ValidateReason("r-1", ""); !errors.Is(err, ErrInvalid) {
		t.Error("empty reason accepted")
	}
	if err := ValidateReason("r-1", strings.Repeat("x", MaxReasonLen+1)); !errors.Is(err, ErrInvalid) {
		t.Error("long reason accepted")
	}
}

func TestBuildDigest(t *testing.T) {
	a, err := BuildDigest("default", "r-1", goodTx())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := BuildDigest("default", "r-2", goodTx())
	if bytes.Equal(a.Digest, b.Digest) || len(a.Digest) != 32 {
		t.Fatal("digests of distinct requests collide")
	}
	if got := a.DerivationPath; len(got) != 5 || got[1] != 60 || got[2] != 0 {
		t.Fatalf("path = %v", got)
	}
	again, _ := BuildDigest("default", "r-1", goodTx())
	if !bytes.Equal(a.Digest, again.Digest) {
		t.Fatal("digest is not deterministic")
	}
}

// FuzzSubmission fuzzes the decoding of submissions as the server receives
// them: protobuf decoding, then validation. Whatever validates must survive
// a marshal/unmarshal round trip unchanged and still validate.
func FuzzSubmission(f *testing.F) {
	tx, _ := proto.Marshal(&protocol.WsSubmitTransactionRequest{UserId: "u-1", IdempotencyKey: "k", Transaction: goodTx()})
	f.Add(tx, false)
	for _, c := range allConfigChanges() {
		b, _ := proto.Marshal(&protocol.WsSubmitConfigChangeRequest{UserId: "u-1", ConfigChange: c})
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, config bool) {
		var msg proto.Message
		validate := func(m proto.Message) error {
			if config {
				return ValidateSubmitConfigChange(m.(*protocol.WsSubmitConfigChangeRequest))
			}
			return ValidateSubmitTransaction(m.(*protocol.WsSubmitTransactionRequest))
		}
		fresh := func() proto.Message {
			if config {
				return &protocol.WsSubmitConfigChangeRequest{}
			}
			return &protocol.WsSubmitTransactionRequest{}
		}
		msg = fresh()
		if err := proto.Unmarshal(b, msg); err != nil {
			return
		}
		if err := validate(msg); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("validation error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		out, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		back := fresh()
		if err := proto.Unmarshal(out, back); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(msg, back) {
			t.Fatal("round trip changed the submission")
		}
		if err := validate(back); err != nil {
			t.Fatalf("round trip made it invalid: %v", err)
		}
		if !config {
			if _, err := BuildDigest("w", "r-1", back.(*protocol.WsSubmitTransactionRequest).GetTransaction()); err != nil {
				t.Fatalf("valid transaction has no digest: %v", err)
			}
		}
	})
}

func TestAssetOfPath(t *testing.T) {
	for _, tc := range []struct {
		path []uint32
		want string
	}{
		{[]uint32{44, 60, 0, 0, 7}, "ETH"},
		{[]uint32{44, 0, 1}, "BTC"},
		{[]uint32{44, 12345}, ""},
		{[]uint32{49, 0, 0}, ""},
		{[]uint32{44}, ""},
		{nil, ""},
	} {
		got, ok := AssetOfPath(tc.path)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("AssetOfPath(%v) = %q, %t; want %q", tc.path, got, ok, tc.want)
		}
	}
}
