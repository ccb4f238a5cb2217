package mpc

import (
	"fmt"
	"slices"

	"github.com/taurusgroup/multi-party-sig/pkg/party"
)

// MaxParties is the largest number of parties a session may have.
const MaxParties = 16

// maxPartyIDLen bounds a party ID. The library turns an ID into a scalar by
// reading its bytes as a big-endian number, so IDs of at most 32 printable
// bytes give distinct, non-zero scalars below the group order.
const maxPartyIDLen = 32

// PartyID identifies one MPC party. It is 1 to 32 bytes of letters, digits,
// '.', '_', ':' or '-'.
type PartyID string

// Validate reports whether id is a well-formed party ID.
func (id PartyID) Validate() error {
	if len(id) == 0 || len(id) > maxPartyIDLen {
		return fmt.Errorf("party ID must be 1 to %d bytes, got %d", maxPartyIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return fmt.Errorf("party ID has a byte 0x%02x outside [A-Za-z0-9._:-]", c)
		}
	}
	return nil
}

// validateParties checks a party set: each ID well formed, no duplicates,
// between 1 and MaxParties IDs. It returns the IDs sorted.
func validateParties(ids []PartyID) ([]PartyID, error) {
	if len(ids) == 0 || len(ids) > MaxParties {
		return nil, fmt.Errorf("need 1 to %d parties, got %d", MaxParties, len(ids))
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	for i, id := range sorted {
		if err := id.Validate(); err != nil {
			return nil, err
		}
		if i > 0 && sorted[i-1] == id {
			return nil, fmt.Errorf("party %q appears twice", id)
		}
	}
	return sorted, nil
}

func toLibIDs(ids []PartyID) []party.ID {
	out := make([]party.ID, len(ids))
	for i, id := range ids {
		out[i] = party.ID(id)
	}
	return out
}

func fromLibIDs(ids []party.ID) []PartyID {
	out := make([]PartyID, len(ids))
	for i, id := range ids {
		out[i] = PartyID(id)
	}
	return out
}
