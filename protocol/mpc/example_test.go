package mpc_test

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"github.com/coterie-mpc/coterie/protocol/mpc"
)

func ExampleParsePath() {
	p, err := mpc.ParsePath("m/44/60/0/0/7")
	fmt.Println([]uint32(p), err)
	_, err = mpc.ParsePath("m/44'/60")
	fmt.Println(err != nil)
	// Output:
	// [44 60 0 0 7] <nil>
	// true
}

// The platform derives the public key that a signature for a path must
// verify under from the master public key and chain code alone.
func ExampleDerivePublicKey() {
	// A master public key (here the generator, 1·G) and its chain code.
	master, _ := hex.DecodeString("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	chainCode := bytes.Repeat([]byte{1}, 32)
	path, _ := mpc.ParsePath("m/44/60/0/0/7")
	pub, err := mpc.DerivePublicKey(master, chainCode, path)
	fmt.Println(hex.EncodeToString(pub), err)
	// Output:
	// 0212a989514b28816040a47dc529b9f7be640a2aacbf3272c8d31af4453eb7aa26 <nil>
}
