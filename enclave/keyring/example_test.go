package keyring_test

import (
	"fmt"

	"github.com/coterie-mpc/coterie/enclave/keyring"
)

// Each secret the FSM keeps is encrypted under the keyring and bound to its
// record's ID.
func ExampleKeyring_Encrypt() {
	kr, err := keyring.Generate()
	if err != nil {
		panic(err)
	}
	ct, err := kr.Encrypt("presig/key-1/42", []byte("presignature share"))
	if err != nil {
		panic(err)
	}
	pt, err := kr.Decrypt("presig/key-1/42", ct)
	fmt.Printf("%s %v\n", pt, err)

	_, err = kr.Decrypt("presig/key-1/43", ct)
	fmt.Println(err)
	// Output:
	// presignature share <nil>
	// keyring: ciphertext belongs to another record: "presig/key-1/43"
}
