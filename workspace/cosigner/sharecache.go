package cosigner

import (
	"bytes"
	"encoding/binary"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/verify"
)

// shareCache keeps decoded key shares in memory, so that a session does not
// pay for decrypting a share and for the library's checks of its Paillier
// primes (several milliseconds) every time.
//
// An entry is keyed by user and cloud party and remembers the ciphertext it
// was decrypted from; a lookup hits only when the caller presents the same
// ciphertext, so a share that key generation or a refresh re-sealed is never
// served stale, whatever the interleaving. Refresh and key generation also
// drop the user's entries at once, so that an old share leaves memory. It
// is safe for concurrent use.
type shareCache struct{ m *lru[shareKey, *sealedShare] }

type shareKey struct {
	user  string
	party mpc.PartyID
}

type sealedShare struct {
	sealed []byte
	share  *mpc.KeyShare
}

// newShareCache returns a cache of at most max shares; 0 caches nothing.
func newShareCache(max int) *shareCache {
	return &shareCache{m: newLRU[shareKey, *sealedShare](max)}
}

// get returns the share decrypted from sealed, if it is cached.
func (c *shareCache) get(user string, p mpc.PartyID, sealed []byte) (*mpc.KeyShare, bool) {
	e, ok := c.m.get(shareKey{user, p})
	if !ok || !bytes.Equal(e.sealed, sealed) {
		return nil, false
	}
	return e.share, true
}

// put caches share, decrypted from sealed, replacing the user's older
// share of that party.
func (c *shareCache) put(user string, p mpc.PartyID, sealed []byte, share *mpc.KeyShare) {
	c.m.put(shareKey{user, p}, &sealedShare{sealed: bytes.Clone(sealed), share: share})
}

// drop forgets every cached share of user.
func (c *shareCache) drop(user string) {
	c.m.deleteFunc(func(k shareKey) bool { return k.user == user })
}

// derivedKeys caches the public keys derived for verification (BIP-32
// derivation costs a scalar multiplication per level), keyed by the master
// public key, the chain code and the path. Everything in it is public.
type derivedKeys struct{ m *lru[string, []byte] }

func newDerivedKeys(max int) *derivedKeys {
	return &derivedKeys{m: newLRU[string, []byte](max)}
}

// get returns the public key derived for d below key, computing it on a
// miss. The caller must not modify the result.
func (c *derivedKeys) get(key *protocol.WsSigningKey, d *protocol.WsDigestToSign) ([]byte, error) {
	pub, chain := key.GetPublicKey(), key.GetChainCode()
	k := make([]byte, 0, 2*binary.MaxVarintLen64+len(pub)+len(chain)+4*len(d.GetDerivationPath()))
	k = binary.AppendUvarint(k, uint64(len(pub)))
	k = append(k, pub...)
	k = binary.AppendUvarint(k, uint64(len(chain)))
	k = append(k, chain...)
	for _, i := range d.GetDerivationPath() {
		k = binary.BigEndian.AppendUint32(k, i)
	}
	if derived, ok := c.m.get(string(k)); ok {
		return derived, nil
	}
	derived, err := verify.DerivedKey(key, d)
	if err != nil {
		return nil, err
	}
	c.m.put(string(k), derived)
	return derived, nil
}
