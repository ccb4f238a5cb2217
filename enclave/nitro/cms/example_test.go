package cms_test

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"github.com/coterie-mpc/coterie/enclave/nitro/cms"
)

// The enclave makes a fresh RSA key for one KMS call, puts its public key
// in the attestation document of the call's Recipient, and opens the
// answer's CiphertextForRecipient with it.
func ExampleOpen() {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	var ciphertextForRecipient []byte // from kms.DecryptOutput
	_, err = cms.Open(ciphertextForRecipient, key)
	fmt.Println(err != nil)
	// Output: true
}
