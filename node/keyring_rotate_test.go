package node

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/cluster"
)

// addSealedPresignatures puts count presignatures sealed under the node's
// current keyring version in a pool of their own.
func addSealedPresignatures(t *testing.T, n *Node, count int) {
	t.Helper()
	const key, per = "k-rotate", 50
	ctx := ctxT(t, 30*time.Second)
	for done := 0; done < count; done += per {
		err := n.cluster.AddPresignatures(ctx, key, "", func(seq uint64) ([]cluster.SealedPresignature, error) {
			var out []cluster.SealedPresignature
			for i := range min(per, count-done) {
				id := fmt.Sprintf("p-%d", done+i)
				s := seq + uint64(i)
				ct, err := n.kr.Encrypt(cluster.PresignatureRecordID(key, n.cluster.NodeID(), s, id), []byte("share "+id))
				if err != nil {
					return nil, err
				}
				out = append(out, cluster.SealedPresignature{ID: id, OriginSeq: s, Sealed: ct})
			}
			return out, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// nextResealed waits for the next RecordsResealed event and returns how
// many parts it moved.
func nextResealed(t *testing.T, events <-chan cluster.Event) int {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == cluster.EventRecordsResealed {
				return ev.Count
			}
		case <-timeout:
			t.Fatal("no re-encryption batch within 10s of the tick")
		}
	}
}

// sameJSON reports whether got is the JSON value want, whatever its layout.
func sameJSON(got []byte, want string) bool {
	var g, w any
	return json.Unmarshal(got, &g) == nil && json.Unmarshal([]byte(want), &w) == nil && reflect.DeepEqual(g, w)
}

// TestRotateKeyringAdmin covers the rotation's admin endpoints and the
// leader's re-encryption pass on one node: both endpoints need the admin
// token; a rotation answers with its version, the members it reached and
// the records left; the pass moves nothing before its first tick on the
// node's clock and at most one batch per tick, until no record is left;
// a node no longer in the member table is refused in a JSON error that
// says why; and Close stops the pass.
func TestRotateKeyringAdmin(t *testing.T) {
	fake := clock.NewFake(time.Now())
	cfg := testConfig(t, t.TempDir())
	cfg.Clock = fake
	n := startNode(t, cfg)
	base := "http://" + n.AdminAddr()
	if code, body := get(t, base+PathKeyring, ""); code != http.StatusUnauthorized || !sameJSON(body, `{"code":"unauthorized","error":"missing or wrong admin token (see admin.token in the data directory)"}`) {
		t.Fatalf("GET %s without the token: %d %s", PathKeyring, code, body)
	}
	if code, body := post(t, base+PathRotateKeyring, "", ""); code != http.StatusUnauthorized || !strings.Contains(body, `"code": "unauthorized"`) {
		t.Fatalf("POST %s without the token: %d %s", PathRotateKeyring, code, body)
	}
	ac, err := NewAdminClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, time.Minute)

	// More sealed parts than one batch moves.
	const presigs = 2*resealBatch + 22
	addSealedPresignatures(t, n, presigs)
	if code, body := get(t, base+PathKeyring, ac.token); code != http.StatusOK ||
		!sameJSON(body, `{"version":1,"members":[{"id":"n1","version":1}],"records_left":0}`) {
		t.Fatalf("keyring before the rotation: %d %s", code, body)
	}
	events, unsub := n.cluster.Subscribe(1024)
	defer unsub()
	rep, err := ac.RotateKeyring(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := n.cluster.StaleSealed()
	if rep.Version != 2 || !slices.Equal(rep.WrappedTo, []string{"n1"}) || rep.RecordsLeft != total || total < presigs {
		t.Fatalf("rotation %+v with %d stale parts, want version 2 wrapped to n1 and at least %d left", rep, total, presigs)
	}
	for ev := range events {
		if ev.Kind == cluster.EventKeyringAdopted && ev.Node == "n1" && ev.KeyVersion == 2 {
			break
		}
	}
	kr, err := ac.Keyring(ctx)
	if err != nil || kr.Version != 2 || len(kr.Members) != 1 || kr.Members[0].ID != "n1" || kr.Members[0].Version != 2 || len(kr.Members[0].Pending) != 0 {
		t.Fatalf("keyring after the adoption %+v, %v", kr, err)
	}
	if left := n.cluster.StaleSealed(); left != total {
		t.Fatalf("%d of %d parts moved before the first tick", total-left, total)
	}

	// One batch per tick of the node's clock.
	ticks := 0
	for left := total; left > 0; ticks++ {
		fake.Advance(resealInterval)
		moved := nextResealed(t, events)
		if want := min(left, resealBatch); moved != want {
			t.Fatalf("tick %d moved %d parts, want %d", ticks+1, moved, want)
		}
		left -= moved
		if got := n.cluster.StaleSealed(); got != left {
			t.Fatalf("after tick %d, %d parts left, want %d", ticks+1, got, left)
		}
	}
	if want := (total + resealBatch - 1) / resealBatch; ticks != want {
		t.Fatalf("%d ticks for %d parts, want %d", ticks, total, want)
	}
	if code, body := get(t, base+PathKeyring, ac.token); code != http.StatusOK ||
		!sameJSON(body, `{"version":2,"members":[{"id":"n1","version":2}],"records_left":0}`) {
		t.Fatalf("keyring after the pass: %d %s", code, body)
	}

	// Taken out of the member table behind its back, the node may not
	// rotate, and the answer says why.
	ghostKey, _, _ := ed25519.GenerateKey(nil)
	tok, err := ac.JoinToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ghost := cluster.Member{ID: "ghost", Address: "127.0.0.1:1", IdentityKey: ghostKey, Enclave: n.enclave.Self(), JoinedWith: tok.TokenID}
	if _, err := n.cluster.Propose(ctx, cluster.MemberAddedCommand(ghost)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cluster.Propose(ctx, cluster.MemberRemovedCommand("n1")); err != nil {
		t.Fatal(err)
	}
	code, body := post(t, base+PathRotateKeyring, ac.token, "")
	var e adminError
	if err := json.Unmarshal([]byte(body), &e); err != nil || code != http.StatusConflict || e.Code != codeMember ||
		!strings.Contains(e.Error, `node "n1" is not a member`) {
		t.Fatalf("rotation by a node out of the member table: %d %s", code, body)
	}

	// Close ends the pass before the cluster it proposes to closes, and
	// returns once it has ended; a tick after it finds nothing running.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	fake.Advance(resealInterval)
}
