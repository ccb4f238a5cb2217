package keyring

// Test-only access to secrets, for the scans that prove they never reach
// disk.

// PrivateKeyForTest returns the receiver's HPKE private key.
func (r *Receiver) PrivateKeyForTest() []byte {
	b, err := r.priv.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}

// DataKeysForTest returns copies of every data key.
func (k *Keyring) DataKeysForTest() [][]byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var keys [][]byte
	for _, dk := range k.keys {
		keys = append(keys, append([]byte(nil), dk.raw...))
	}
	return keys
}

// testBind is what the tests' joiners bind into their transfer evidence
// (a node's identity key in the real join).
var testBind = []byte("joiner identity key")

// TestBind is testBind for the external tests.
var TestBind = testBind
