package mpc

import (
	"fmt"

	pb "github.com/coterie-mpc/coterie/protocol"
	"google.golang.org/protobuf/proto"
)

// Envelope limits.
const (
	// EnvelopeVersion is the MpcEnvelope version that this package writes and
	// accepts. Version 2: online rounds re-randomize their presignature, so
	// a party of version 1 would sign with another nonce; its envelopes are
	// refused as malformed rather than ending in an abort that blames an
	// honest party.
	EnvelopeVersion = 2
	// MaxEnvelopeSize bounds an encoded envelope that DecodeEnvelope accepts.
	MaxEnvelopeSize = 4 << 20
	// MaxSessionIDLen bounds a session ID.
	MaxSessionIDLen = 64
	// ssidLen is the length of the library's transcript identifier.
	ssidLen = 64
)

// EncodeEnvelope encodes env for the wire, deterministically.
func EncodeEnvelope(env *pb.MpcEnvelope) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(env)
}

// DecodeEnvelope decodes bytes from a peer and checks the envelope's
// structure (ValidateEnvelope). It never panics. Errors wrap ErrOversize or
// ErrMalformed.
func DecodeEnvelope(data []byte) (*pb.MpcEnvelope, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: envelope of %d bytes exceeds %d", ErrOversize, len(data), MaxEnvelopeSize)
	}
	env := &pb.MpcEnvelope{}
	if err := proto.Unmarshal(data, env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := ValidateEnvelope(env); err != nil {
		return nil, err
	}
	return env, nil
}

// ValidateEnvelope checks the parts of an envelope that do not depend on a
// session: version, field sizes and formats, and the rules that tie fields
// together (a broadcast has no recipient; an abort notice has round 0 and no
// payload). Errors wrap ErrMalformed or ErrOversize.
func ValidateEnvelope(env *pb.MpcEnvelope) error {
	if err := validateEnvelope(env, MaxEnvelopeSize); err != nil {
		return fmt.Errorf("%w: %s", err.sentinel, err.detail)
	}
	return nil
}

type envelopeError struct {
	sentinel error
	detail   string
}

func malformed(format string, args ...any) *envelopeError {
	return &envelopeError{ErrMalformed, fmt.Sprintf(format, args...)}
}

func validateEnvelope(env *pb.MpcEnvelope, maxPayload int) *envelopeError {
	if env == nil {
		return malformed("nil envelope")
	}
	if len(env.ProtoReflect().GetUnknown()) > 0 {
		return malformed("unknown fields")
	}
	if env.GetVersion() != EnvelopeVersion {
		return malformed("version %d, want %d", env.GetVersion(), EnvelopeVersion)
	}
	if n := len(env.GetSessionId()); n == 0 || n > MaxSessionIDLen {
		return malformed("session ID of %d bytes, want 1 to %d", n, MaxSessionIDLen)
	}
	if protocolFromWire(env.GetProtocol()) == ProtocolUnspecified {
		return malformed("unknown protocol %d", env.GetProtocol())
	}
	if err := PartyID(env.GetFrom()).Validate(); err != nil {
		return malformed("sender: %v", err)
	}
	if n := len(env.GetPayload()); n > maxPayload {
		return &envelopeError{ErrOversize, fmt.Sprintf("payload of %d bytes exceeds %d", n, maxPayload)}
	}
	if a := env.GetAbort(); a != nil {
		if len(a.ProtoReflect().GetUnknown()) > 0 {
			return malformed("unknown fields in abort notice")
		}
		if env.GetRound() != 0 || len(env.GetPayload()) != 0 || len(env.GetBroadcastVerification()) != 0 ||
			!env.GetBroadcast() || env.GetTo() != "" {
			return malformed("abort notice must be a round-0 broadcast with no payload")
		}
		if len(a.GetCulprits()) > MaxParties {
			return malformed("abort notice names %d culprits", len(a.GetCulprits()))
		}
		if n := len(env.GetSsid()); n != 0 && n != ssidLen {
			return malformed("SSID of %d bytes, want 0 or %d", n, ssidLen)
		}
		for _, c := range a.GetCulprits() {
			if err := PartyID(c).Validate(); err != nil {
				return malformed("abort culprit: %v", err)
			}
		}
		return nil
	}
	if env.GetRound() == 0 {
		return malformed("round 0 without an abort notice")
	}
	if len(env.GetPayload()) == 0 {
		return malformed("empty payload")
	}
	if env.GetBroadcast() {
		if env.GetTo() != "" {
			return malformed("broadcast with a recipient")
		}
	} else {
		if err := PartyID(env.GetTo()).Validate(); err != nil {
			return malformed("recipient: %v", err)
		}
		if env.GetTo() == env.GetFrom() {
			return malformed("message to self")
		}
	}
	if n := len(env.GetBroadcastVerification()); n != 0 && n != ssidLen {
		return malformed("broadcast verification of %d bytes", n)
	}
	if n := len(env.GetSsid()); n != ssidLen {
		return malformed("SSID of %d bytes, want %d", n, ssidLen)
	}
	return nil
}
