package cluster

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/protocol"
)

// secretMarker fills every secret field of the commands TestLogEntries
// writes, so that the test can look for it in what LogEntries answers.
var secretMarker = []byte("SECRET-MARKER-0123456789")

func TestLogEntries(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	idKey := bytes.Repeat([]byte{7}, 32)
	member := Member{ID: "n2", Address: "127.0.0.1:7002", IdentityKey: idKey, Enclave: enclave.Identity{Kind: enclave.KindSim, Measurement: []byte("m1")},
		JoinedWith: "tok-1"}
	policy := enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Measurement: []byte("m1"), AllowDebug: true}}}
	sealed := []SealedPresignature{{ID: "p1", OriginSeq: 1, Sealed: secretMarker}, {ID: "p2", OriginSeq: 2, Sealed: secretMarker}}
	resealed := append(scriptSealed(2), secretMarker...)
	tests := []struct {
		name string
		cmd  *protocol.ClusterCommand
		want LogEntry
	}{
		{"claim", ClaimCommand("r1", "u1"), LogEntry{Kind: KindClaim, RequestID: "r1", APIUserID: "u1"}},
		{"reserve", ReserveCommand("r1", PresignatureRef{KeyID: "k1", ID: "p1"}), LogEntry{Kind: KindReserve, RequestID: "r1", KeyID: "k1", Presignatures: []string{"p1"}}},
		{"reserve next", ReserveCommand("r1", PresignatureRef{KeyID: "k1"}), LogEntry{Kind: KindReserve, RequestID: "r1", KeyID: "k1"}},
		{"complete", CompleteCommand("r1", OutcomeRejected, "policy says no"), LogEntry{Kind: KindComplete, RequestID: "r1", Outcome: OutcomeRejected.String()}},
		{"release", ReleaseCommand("n3", ""), LogEntry{Kind: KindRelease, ReleasedNode: "n3"}},
		{"hand-back", ReleaseCommand("n3", "u1"), LogEntry{Kind: KindRelease, ReleasedNode: "n3", APIUserID: "u1"}},
		{"presignatures added", PresignaturesAddedCommand("k1", "", sealed), LogEntry{Kind: KindPresignaturesAdded, KeyID: "k1", Presignatures: []string{"p1", "p2"}}},
		{"presignature added and reserved", PresignaturesAddedCommand("k1", "r1", sealed[:1]), LogEntry{Kind: KindPresignaturesAdded, RequestID: "r1", KeyID: "k1", Presignatures: []string{"p1"}}},
		{"confirm", ConfirmCommand("r1"), LogEntry{Kind: KindConfirm, RequestID: "r1"}},
		{"sync", SyncCommand(), LogEntry{Kind: KindSync}},
		{"api user", APIUserAddedCommand(Record{ID: "u1", Public: []byte("pub"), Sealed: secretMarker}), LogEntry{Kind: KindAPIUserAdded}},
		{"key record", KeyRecordAddedCommand(Record{ID: "key1", OwnerID: "u1", Public: []byte("pub"), Sealed: secretMarker}), LogEntry{Kind: KindKeyRecordAdded}},
		{"callback", CallbackSetCommand("https://127.0.0.1/cb", secretMarker), LogEntry{Kind: KindCallbackSet}},
		{"user callback", &protocol.ClusterCommand{Body: &protocol.ClusterCommand_UserCallbackSet{UserCallbackSet: &protocol.ClusterUserCallbackSet{
			UserCallback: &protocol.ClusterUserCallback{UserId: "u1", Callback: &protocol.ClusterCallback{Url: "https://127.0.0.1/u", HandlerKey: secretMarker}}}}},
			LogEntry{Kind: KindUserCallbackSet}},
		{"user callback cleared", &protocol.ClusterCommand{Body: &protocol.ClusterCommand_UserCallbackCleared{UserCallbackCleared: &protocol.ClusterUserCallbackCleared{UserId: "u1"}}},
			LogEntry{Kind: KindUserCallbackCleared}},
		{"init", InitCommand("c1", policy, Member{ID: "n1", Address: "127.0.0.1:7001", IdentityKey: idKey, Enclave: member.Enclave}), LogEntry{Kind: KindInit}},
		{"member added", MemberAddedCommand(member), LogEntry{Kind: KindMemberAdded}},
		{"member removed", MemberRemovedCommand("n2"), LogEntry{Kind: KindMemberRemoved}},
		{"policy", PolicySetCommand(policy), LogEntry{Kind: KindPolicySet}},
		{"join token", JoinTokenIssuedCommand("tok-1", append(slices.Clone(secretMarker), make([]byte, 32-len(secretMarker))...), at.Add(time.Hour)), LogEntry{Kind: KindJoinTokenIssued}},
		{"keyring rotated", &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyringRotated{KeyringRotated: &protocol.ClusterKeyringRotated{
			Version: 2, Check: append(slices.Clone(secretMarker), make([]byte, keyCheckSize-len(secretMarker))...),
			Copies: []*protocol.ClusterWrappedKey{{MemberId: "n1", IdentityKey: idKey, Wrapped: secretMarker}}}}},
			LogEntry{Kind: KindKeyringRotated}},
		{"keyring adopted", &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyringAdopted{KeyringAdopted: &protocol.ClusterKeyringAdopted{Version: 2}}},
			LogEntry{Kind: KindKeyringAdopted}},
		{"records resealed", &protocol.ClusterCommand{Body: &protocol.ClusterCommand_RecordsResealed{RecordsResealed: &protocol.ClusterRecordsResealed{
			Records: []*protocol.ClusterResealedRecord{{Kind: sealedAPIUser, Id: "u1", Sealed: resealed}}}}},
			LogEntry{Kind: KindRecordsResealed}},
	}
	store := raft.NewInmemStore()
	var want []LogEntry
	for i, tt := range tests {
		stamp(tt.cmd, "n1", at)
		data, err := EncodeCommand(tt.cmd)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if _, err := DecodeCommand(data); err != nil {
			t.Fatalf("%s: the test's command does not validate: %v", tt.name, err)
		}
		idx := uint64(i + 1)
		if err := store.StoreLog(&raft.Log{Index: idx, Term: 2, Type: raft.LogCommand, Data: data}); err != nil {
			t.Fatal(err)
		}
		w := tt.want
		w.Index, w.Term, w.Type, w.Node, w.ProposedAt = idx, 2, LogTypeCommand, "n1", at
		want = append(want, w)
	}
	n := uint64(len(tests))
	others := []struct {
		log  raft.Log
		want LogEntry
	}{
		{raft.Log{Type: raft.LogNoop}, LogEntry{Type: LogTypeNoop}},
		{raft.Log{Type: raft.LogConfiguration, Data: secretMarker}, LogEntry{Type: LogTypeConfiguration}},
		{raft.Log{Type: raft.LogCommand, Data: secretMarker}, LogEntry{Type: LogTypeCommand, Kind: KindInvalid}},
	}
	for _, o := range others {
		n++
		o.log.Index, o.log.Term = n, 3
		o.want.Index, o.want.Term = n, 3
		if err := store.StoreLog(&o.log); err != nil {
			t.Fatal(err)
		}
		want = append(want, o.want)
	}
	// An entry past the applied index is not read.
	if err := store.StoreLog(&raft.Log{Index: n + 1, Term: 3, Type: raft.LogNoop}); err != nil {
		t.Fatal(err)
	}

	got, first, more, err := readLog(store, n, 0, 0)
	if err != nil || first != 1 || more {
		t.Fatalf("readLog: first %d, more %v, err %v", first, more, err)
	}
	for i := range max(len(got), len(want)) {
		var g, w LogEntry
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !logEntryEqual(g, w) {
			t.Errorf("entry %d:\ngot  %+v\nwant %+v", i+1, g, w)
		}
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{string(secretMarker), base64.StdEncoding.EncodeToString(secretMarker), hex.EncodeToString(secretMarker)} {
		if bytes.Contains(b, []byte(enc)) {
			t.Errorf("the entries' JSON holds secret bytes (%q):\n%s", enc, b)
		}
	}
}

func logEntryEqual(a, b LogEntry) bool {
	if !a.ProposedAt.Equal(b.ProposedAt) {
		return false
	}
	a.ProposedAt, b.ProposedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestLogEntriesPaging(t *testing.T) {
	store := raft.NewInmemStore()
	for i := uint64(5); i <= 14; i++ {
		if err := store.StoreLog(&raft.Log{Index: i, Term: 1, Type: raft.LogNoop}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name         string
		upTo, after  uint64
		limit        int
		first, last  uint64 // indexes of the first and last entry returned, 0 for none
		wantMore     bool
		wantFirstIdx uint64
	}{
		{"from the start, below the first retained", 14, 0, 4, 5, 8, true, 5},
		{"the next page", 14, 8, 4, 9, 12, true, 5},
		{"the last page", 14, 12, 4, 13, 14, false, 5},
		{"bounded by the applied index", 10, 8, 4, 9, 10, false, 5},
		{"nothing past the applied index", 10, 10, 4, 0, 0, false, 5},
		{"a limit out of range is the largest", 14, 0, MaxLogEntries + 1, 5, 14, false, 5},
		{"exactly a page", 14, 10, 4, 11, 14, false, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, first, more, err := readLog(store, tt.upTo, tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var lo, hi uint64
			if len(got) > 0 {
				lo, hi = got[0].Index, got[len(got)-1].Index
			}
			if lo != tt.first || hi != tt.last || more != tt.wantMore || first != tt.wantFirstIdx {
				t.Errorf("got %d..%d more %v first %d, want %d..%d more %v first %d", lo, hi, more, first, tt.first, tt.last, tt.wantMore, tt.wantFirstIdx)
			}
		})
	}
}
