package request

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/coterie-mpc/coterie/protocol"
	"google.golang.org/protobuf/proto"
)

// digestDomain separates the simulator's built digests from anything else.
const digestDomain = "coterie/v1/sim-transaction"

// coinTypes are the SLIP-44 coin types of the assets the simulator knows;
// other assets use 1 (testnet).
var coinTypes = map[string]uint32{"BTC": 0, "LTC": 2, "DOGE": 3, "ETH": 60, "ETC": 61, "USDT_ERC20": 60, "USDC": 60, "SOL": 501, "MATIC": 966}

// nativeAssets name the native asset of the SLIP-44 coin types in
// coinTypes.
var nativeAssets = map[uint32]string{0: "BTC", 2: "LTC", 3: "DOGE", 60: "ETH", 61: "ETC", 501: "SOL", 966: "MATIC"}

// AssetOfPath returns the native asset of a BIP-44 path's coin type
// (44/60/... is ETH), and false when the path is not BIP-44 or its coin
// type is not one the simulator knows.
func AssetOfPath(path []uint32) (string, bool) {
	if len(path) < 2 || path[0] != 44 {
		return "", false
	}
	a, ok := nativeAssets[path[1]]
	return a, ok
}

// Path returns the derivation path of a transaction's built digest:
// 44/coin/vault/0/0, all unhardened.
func Path(asset string, vault uint32) []uint32 {
	coin, ok := coinTypes[asset]
	if !ok {
		coin = 1
	}
	return []uint32{44, coin, vault, 0, 0}
}

// BuildDigest returns the digest the platform signs for a transaction that
// names no digests: the SHA-256 of the workspace and request IDs and the
// transaction, so that two identical transfers still get distinct digests.
// tx must have passed ValidateTransaction.
func BuildDigest(workspaceID, requestID string, tx *protocol.WsTransaction) (*protocol.WsDigestToSign, error) {
	vault, err := VaultIndex(tx.GetSource().GetId())
	if err != nil {
		return nil, err
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(tx)
	if err != nil {
		return nil, fmt.Errorf("request: marshal transaction: %w", err)
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(digestDomain), []byte(workspaceID), []byte(requestID), body} {
		h.Write(binary.AppendUvarint(nil, uint64(len(part))))
		h.Write(part)
	}
	return &protocol.WsDigestToSign{Digest: h.Sum(nil), DerivationPath: Path(tx.GetAsset(), vault)}, nil
}
