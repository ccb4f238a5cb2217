package mpc

import (
	pb "github.com/coterie-mpc/coterie/protocol"
)

// Protocol names a CMP sub-protocol.
type Protocol int

// The sub-protocols, numbered as in the wire enum MpcProtocol.
const (
	ProtocolUnspecified Protocol = iota
	ProtocolKeygen
	ProtocolRefresh
	ProtocolPresign
	ProtocolPresignOnline
	ProtocolSign
)

// String returns the protocol's lower-case name.
func (p Protocol) String() string {
	switch p {
	case ProtocolKeygen:
		return "keygen"
	case ProtocolRefresh:
		return "refresh"
	case ProtocolPresign:
		return "presign"
	case ProtocolPresignOnline:
		return "presign-online"
	case ProtocolSign:
		return "sign"
	default:
		return "unspecified"
	}
}

func (p Protocol) wire() pb.MpcProtocol { return pb.MpcProtocol(p) }

func protocolFromWire(w pb.MpcProtocol) Protocol {
	p := Protocol(w)
	if p < ProtocolKeygen || p > ProtocolSign {
		return ProtocolUnspecified
	}
	return p
}

// roundShape says which messages a round carries: a reliable broadcast from
// every party, a point-to-point message from every party to every other, or
// both.
type roundShape struct {
	number    uint32
	broadcast bool
	direct    bool
}

// rounds lists, for each sub-protocol, the rounds in which parties exchange
// messages, in order. It mirrors multi-party-sig v0.7.0-alpha-2025-01-28
// (protocols/cmp/{keygen,presign,sign}); a session refuses to emit a message
// that the table does not allow, so a library change fails loudly in tests
// rather than weakening the checks on incoming messages.
var rounds = map[Protocol][]roundShape{
	ProtocolKeygen:        keygenRounds,
	ProtocolRefresh:       keygenRounds,
	ProtocolPresign:       {{2, true, true}, {3, true, true}, {4, true, false}, {5, true, true}, {6, true, false}, {7, true, false}},
	ProtocolPresignOnline: {{8, true, false}},
	ProtocolSign:          {{2, true, true}, {3, true, true}, {4, true, true}, {5, true, false}},
}

var keygenRounds = []roundShape{{2, true, false}, {3, true, false}, {4, true, true}, {5, true, false}}

// shape returns the shape of round n of p and its index in the table.
func shape(p Protocol, n uint32) (roundShape, int, bool) {
	for i, r := range rounds[p] {
		if r.number == n {
			return r, i, true
		}
	}
	return roundShape{}, 0, false
}
