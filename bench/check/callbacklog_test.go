package check_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/bench/check"
	"github.com/coterie-mpc/coterie/callback"
)

// TestReadCallbackLog runs the reference callback server with the logger
// `coterie callback serve` gives it, and reads back its decisions.
func TestReadCallbackLog(t *testing.T) {
	policy, err := callback.LoadPolicy("../../callback/testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	handlerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nodeKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	cfg := callback.DefaultServerConfig()
	cfg.Policy, cfg.Key, cfg.InsecureSkipRequestVerify = policy, handlerKey, true
	cfg.Logger = slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := callback.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The policy allows 0.5 BTC: a larger amount is rejected, with a
	// reason that the log quotes.
	ask := func(id string, a float64) {
		amount := strconv.FormatFloat(a, 'f', -1, 64)
		addr := "bc1qexampleallowedaddress0000000000000000"
		req := &callback.TxRequest{TxID: "tx-" + id, Operation: "TRANSFER", SourceType: "VAULT", SourceID: "0", DestType: "ONE_TIME_ADDRESS",
			Asset: "BTC", Amount: &a, AmountStr: amount, Fee: "0.0001", DestAddressType: "ONE_TIME", DestAddress: addr,
			Destinations: []callback.Destination{{AmountNative: &a, AmountNativeStr: amount, DestAddress: addr, DestType: "ONE_TIME_ADDRESS"}},
			RawTx:        []callback.RawTx{{KeyDerivationPath: []uint32{44, 0}, Payload: strings.Repeat("ab", 32)}},
			RequestID:    id, SignerID: "u"}
		tok, err := callback.EncodeRequest(req, nodeKey, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, callback.TxPath, strings.NewReader(tok)))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	ask("ws-1-000001", 0.25)
	ask("ws-1-000002", 0.75)
	if !strings.Contains(logBuf.String(), `reason="`) {
		t.Fatalf("the rejection's reason is not quoted, so the test does not read a quoted value:\n%s", logBuf.String())
	}
	logBuf.WriteString("an unrelated line\n")
	got, err := check.ReadCallbackLog(&logBuf)
	if err != nil {
		t.Fatal(err)
	}
	want := []check.Decision{{RequestID: "ws-1-000001", Action: "APPROVE"}, {RequestID: "ws-1-000002", Action: "REJECT"}}
	if !reflect.DeepEqual(got.Decisions, want) {
		t.Fatalf("decisions %+v, want %+v", got.Decisions, want)
	}
}

func TestReadCallbackLogBadLines(t *testing.T) {
	for _, line := range []string{
		`level=INFO msg="callback request decided" kind=transaction action=APPROVE`,
		`level=INFO msg="callback request decided" kind=transaction request_id=r1 action=MAYBE`,
	} {
		if _, err := check.ReadCallbackLog(strings.NewReader(line + "\n")); !errors.Is(err, check.ErrBadRecords) {
			t.Errorf("%s: got %v, want ErrBadRecords", line, err)
		}
	}
}
