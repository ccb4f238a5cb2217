package nitro

import (
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// AWSRootFingerprint is the SHA-256 fingerprint of the DER of the AWS Nitro
// Enclaves root certificate (Root-G1), as AWS publishes it in "Verifying the
// root of trust" of the Nitro Enclaves user guide.
const AWSRootFingerprint = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

// awsRootPEM is root.pem of AWS_NitroEnclaves_Root-G1.zip.
//
//go:embed aws_nitro_root_g1.pem
var awsRootPEM []byte

// AWSRoot returns the AWS Nitro Enclaves root certificate after checking
// it against AWSRootFingerprint.
func AWSRoot() (*x509.Certificate, error) {
	block, _ := pem.Decode(awsRootPEM)
	if block == nil {
		return nil, fmt.Errorf("nitro: the embedded AWS root is not PEM")
	}
	if sum := sha256.Sum256(block.Bytes); hex.EncodeToString(sum[:]) != AWSRootFingerprint {
		return nil, fmt.Errorf("nitro: the embedded AWS root has fingerprint %x, want %s", sum, AWSRootFingerprint)
	}
	return x509.ParseCertificate(block.Bytes)
}

// AWSRoots returns a pool holding only the pinned AWS Nitro root. It
// panics if the embedded certificate does not match its fingerprint: the
// build is broken, and no Nitro document may be trusted.
func AWSRoots() *x509.CertPool {
	root, err := AWSRoot()
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return pool
}
