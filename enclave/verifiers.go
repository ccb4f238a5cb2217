package enclave

import (
	"context"
	"fmt"
)

// Verifiers is a Verifier that hands evidence to the verifier of its kind,
// so that a member of one kind can admit a joiner of another. A kind
// without an entry gets ErrUnsupportedKind. It is safe for concurrent use
// when its verifiers are, and must not be modified once in use.
type Verifiers map[Kind]Verifier

var _ Verifier = Verifiers(nil)

// Verify implements Verifier by the evidence's kind.
func (vs Verifiers) Verify(ctx context.Context, evidence []byte, p Policy) (Identity, error) {
	kind, _, err := ParseEvidence(evidence)
	if err != nil {
		return Identity{}, err
	}
	v, ok := vs[kind]
	if !ok {
		return Identity{}, fmt.Errorf("%w: this node cannot verify %s evidence", ErrUnsupportedKind, kind)
	}
	return v.Verify(ctx, evidence, p)
}

// WithVerifier returns e with its Verify replaced by v's; its sealing,
// evidence and identity stay e's.
func WithVerifier(e Enclave, v Verifier) Enclave { return withVerifier{Enclave: e, v: v} }

type withVerifier struct {
	Enclave
	v Verifier
}

func (w withVerifier) Verify(ctx context.Context, evidence []byte, p Policy) (Identity, error) {
	return w.v.Verify(ctx, evidence, p)
}

// Underlying returns the backend under any WithVerifier layers, for
// callers that look for a backend's own methods (such as the sim's
// PlatformKey).
func Underlying(e Enclave) Enclave {
	for {
		w, ok := e.(withVerifier)
		if !ok {
			return e
		}
		e = w.Enclave
	}
}
