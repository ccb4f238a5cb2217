package main

import (
	"fmt"

	"github.com/coterie-mpc/coterie/protocol"
)

// The demo's callback policy: per-asset maximum amounts, a destination
// allowlist, config-change types allowed but one, and one RETRY rule.
const demoPolicy = `transactions:
  maxAmount:
    BTC: "0.5"
    ETH: "10"
    "*": "1000"
  allowedDestinations:
    - "0xd3m0a11ce00000000000000000000000000000a1"
    - "0xd3m0b0b0000000000000000000000000000000b2"
    - "bc1qd3m0c4r01000000000000000000000000000c3"
configChanges:
  ADD_USER: reject
  "*": approve
retry:
  - times: 1
    noteContains: "retry-once"
`

// demoRetryNote is the note that the policy answers RETRY to once.
const demoRetryNote = "demo: retry-once"

// expectation is what the demo's policy must make of a request.
type expectation int

const (
	expectSigned expectation = iota + 1
	expectApproved
	expectRejected
)

func (e expectation) String() string {
	switch e {
	case expectSigned:
		return "signed"
	case expectApproved:
		return "approved"
	case expectRejected:
		return "rejected"
	default:
		return "unknown"
	}
}

// demoItem is one request the demo submits.
type demoItem struct {
	label  string
	expect expectation
	tx     *protocol.WsTransaction
	cc     *protocol.WsConfigChange
}

func demoTx(asset, amount, to, note string) *protocol.WsTransaction {
	return &protocol.WsTransaction{
		Asset: asset, Amount: amount, Note: note,
		Source:       &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: to}, Amount: amount}},
	}
}

// demoPlan returns n transactions (the first one answered RETRY once,
// then a cycle of allowed ones and ones that break the amount limit or the
// allowlist) and one config change of each of the eight types.
func demoPlan(n int) []demoItem {
	const alice, bob, carol = "0xd3m0a11ce00000000000000000000000000000a1", "0xd3m0b0b0000000000000000000000000000000b2", "bc1qd3m0c4r01000000000000000000000000000c3"
	cycle := []demoItem{
		{label: "ETH 1.5 to an allowed address", expect: expectSigned, tx: demoTx("ETH", "1.5", alice, "demo: payout")},
		{label: "BTC 0.1 to an allowed address", expect: expectSigned, tx: demoTx("BTC", "0.1", carol, "demo: payout")},
		{label: "ETH 250 (over the 10 ETH limit)", expect: expectRejected, tx: demoTx("ETH", "250", bob, "demo: too much")},
		{label: "SOL 20 to an allowed address", expect: expectSigned, tx: demoTx("SOL", "20", bob, "demo: payout")},
		{label: "ETH 2 to an address not on the allowlist", expect: expectRejected, tx: demoTx("ETH", "2", "0xd3m0ma11ory000000000000000000000000000ff", "demo: unknown destination")},
	}
	var items []demoItem
	for i := 0; i < n; i++ {
		if i == 0 {
			items = append(items, demoItem{label: "ETH 0.25, answered RETRY once", expect: expectSigned, tx: demoTx("ETH", "0.25", alice, demoRetryNote)})
			continue
		}
		items = append(items, cycle[(i-1)%len(cycle)])
	}
	cc := func(label string, e expectation, c *protocol.WsConfigChange) demoItem {
		return demoItem{label: label, expect: e, cc: c}
	}
	items = append(items,
		cc("EXCHANGE", expectApproved, &protocol.WsConfigChange{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_EXCHANGE,
			Payload: &protocol.WsConfigChange_Exchange{Exchange: &protocol.WsExchangeAccount{ExchangeType: "BINANCE", Name: "Main Binance", AccountId: "b-1"}}}),
		cc("FIAT_ACCOUNT", expectApproved, &protocol.WsConfigChange{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_FIAT_ACCOUNT,
			Payload: &protocol.WsConfigChange_FiatAccount{FiatAccount: &protocol.WsFiatAccount{Provider: "Demo Bank", Name: "Ops USD", AccountNumber: "0001", Currency: "USD"}}}),
		cc("UNMANAGED_WALLET", expectApproved, &protocol.WsConfigChange{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_UNMANAGED_WALLET,
			Payload: &protocol.WsConfigChange_UnmanagedWallet{UnmanagedWallet: &protocol.WsUnmanagedWallet{Name: "Cold", Asset: "ETH", Address: alice}}}),
		cc("ADD_NETWORK_CONNECTION", expectApproved, &protocol.WsConfigChange{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_NETWORK_CONNECTION,
			Payload: &protocol.WsConfigChange_NetworkConnection{NetworkConnection: &protocol.WsNetworkConnection{PeerNetworkId: "net-7", Name: "Partner"}}}),
		cc("ADD_USER (the policy rejects it)", expectRejected, &protocol.WsConfigChange{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_USER,
			Payload: &protocol.WsConfigChange_AddUser{AddUser: &protocol.WsAddUser{Email: "new@example.com", Name: "New", Role: "VIEWER"}}}),
		cc("CHANGE_QUORUM_THRESHOLD", expectApproved, &protocol.WsConfigChange{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_CHANGE_QUORUM_THRESHOLD,
			Payload: &protocol.WsConfigChange_QuorumChange{QuorumChange: &protocol.WsQuorumChange{OldThreshold: 2, NewThreshold: 3, Admins: 5}}}),
		cc("RE_ENROLL_DEVICE", expectApproved, &protocol.WsConfigChange{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_RE_ENROLL_DEVICE,
			Payload: &protocol.WsConfigChange_DeviceReEnroll{DeviceReEnroll: &protocol.WsDeviceReEnroll{UserEmail: "ops@example.com", DeviceId: "dev-42"}}}),
		cc("ENABLE_ONE_TIME_ADDRESS", expectApproved, &protocol.WsConfigChange{Type: protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS,
			Payload: &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: true}}}),
	)
	return items
}

// demoNodeParams are what differs between the demo's node configs.
type demoNodeParams struct {
	id, dataDir, raftAddr, adminAddr string
	// joinTokenFile is empty for the node that bootstraps the cluster.
	joinTokenFile                        string
	callbackURL, handlerKey, platformKey string
}

// demoNodeConfig is a node's config file for the demo. The timing is short
// but safe on loopback: the leader releases a silent owner's requests after
// one second (the smallest owner_timeout a node accepts), a RETRY answer is
// asked again after one second, and a stop hands the requests in flight
// back after two.
func demoNodeConfig(p demoNodeParams) string {
	return fmt.Sprintf(`# Node %[1]s of the demo's cluster (see node/testdata/example.yaml for every field).
node_id: %[1]s
mode: development
data_dir: %[2]q
enclave:
  kind: sim
  # The demo's nodes share one simulated machine, so they trust each
  # other's sim attestation without sim_trusted_platforms.
  sim_platform_key: %[3]q
raft:
  bind: %[4]q
  bootstrap: %[5]t
cluster:
  location: "onprem:loopback"
  join_token_file: %[6]q
admin:
  listen: %[7]q
presign:
  target_depth: 4
  max_depth: 8
  workers: 1
callback:
  url: %[8]q
  handler_public_key: %[9]q
  timeout: 10s
  retry_attempts: 5
  retry_interval: 1s
owner_timeout: 1s
shutdown_grace: 2s
`, p.id, p.dataDir, p.platformKey, p.raftAddr, p.joinTokenFile == "", p.joinTokenFile, p.adminAddr, p.callbackURL, p.handlerKey)
}
