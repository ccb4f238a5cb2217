package callback

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// The endpoint paths of protocol v2, appended to the handler's base URL.
const (
	TxPath           = "/v2/tx_sign_request"
	ConfigChangePath = "/v2/config_change_sign_request"
)

// maxIDLen bounds requestId, which goes into logs and errors.
const maxIDLen = 256

// Kind is the kind of a request: a transaction to sign or a config change
// to approve. Each kind has its own endpoint.
type Kind uint8

// The two request kinds.
const (
	KindTransaction Kind = iota + 1
	KindConfigChange
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindTransaction:
		return "transaction"
	case KindConfigChange:
		return "config_change"
	default:
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
}

// Path returns the endpoint path for the kind, or "" for an unknown kind.
func (k Kind) Path() string {
	switch k {
	case KindTransaction:
		return TxPath
	case KindConfigChange:
		return ConfigChangePath
	default:
		return ""
	}
}

// Request is a request the co-signer asks its handler about: a *TxRequest
// or a *ConfigChangeRequest. The interface is sealed.
type Request interface {
	// ID returns the request's requestId.
	ID() string
	// Kind returns the request's kind.
	Kind() Kind
	// validate reports whether the request can be sent; it wraps
	// ErrInvalidRequest.
	validate() error
}

var (
	_ Request = (*TxRequest)(nil)
	_ Request = (*ConfigChangeRequest)(nil)
)

// TxRequest is a transaction signing request, sent to TxPath. The JSON
// names are those of protocol v2.
//
// An amount the workspace did not give is absent, never zero: its number
// (Amount, Destination.AmountNative) is nil and encodes as JSON null, and
// its string (AmountStr, Destination.AmountNativeStr) is empty. A handler
// that reads a missing amount as 0 would pass any amount limit; the
// reference Policy refuses a transaction whose amount it must check and
// cannot find.
type TxRequest struct {
	TxID            string        `json:"txId"`
	Operation       string        `json:"operation"`
	SourceType      string        `json:"sourceType"`
	SourceID        string        `json:"sourceId"`
	DestType        string        `json:"destType"`
	DestID          string        `json:"destId"`
	Asset           string        `json:"asset"`
	Amount          *float64      `json:"amount"`
	AmountStr       string        `json:"amountStr"`
	Fee             string        `json:"fee"`
	DestAddressType string        `json:"destAddressType"`
	DestAddress     string        `json:"destAddress"`
	Destinations    []Destination `json:"destinations"`
	RawTx           []RawTx       `json:"rawTx"`
	RequestID       string        `json:"requestId"`
	Note            string        `json:"note"`
	SignerID        string        `json:"signerId"`
}

// Destination is one output of a transaction. Its amount may be absent:
// AmountNative nil (JSON null) and AmountNativeStr empty.
type Destination struct {
	AmountNative    *float64 `json:"amountNative"`
	AmountNativeStr string   `json:"amountNativeStr"`
	DestAddress     string   `json:"dstAddress"`
	DestAddressType string   `json:"dstAddressType"`
	DestID          string   `json:"dstId"`
	DestType        string   `json:"dstType"`
	DestName        string   `json:"dstName"`
}

// RawTx is one message to sign: its hex-encoded payload (the digest) and
// the BIP-32 derivation path of the signing key.
type RawTx struct {
	KeyDerivationPath []uint32 `json:"keyDerivationPath"`
	Payload           string   `json:"payload"`
}

// ID returns the request's requestId.
func (r *TxRequest) ID() string { return r.RequestID }

// Kind returns KindTransaction.
func (r *TxRequest) Kind() Kind { return KindTransaction }

func (r *TxRequest) validate() error {
	if r == nil {
		return fmt.Errorf("%w: nil transaction request", ErrInvalidRequest)
	}
	if err := validateID(r.RequestID); err != nil {
		return err
	}
	if r.Amount != nil && !finite(*r.Amount) {
		return fmt.Errorf("%w: amount is not a finite number", ErrInvalidRequest)
	}
	for i, d := range r.Destinations {
		if d.AmountNative != nil && !finite(*d.AmountNative) {
			return fmt.Errorf("%w: destinations[%d].amountNative is not a finite number", ErrInvalidRequest, i)
		}
	}
	return nil
}

// normalized returns a copy whose nil slices are empty, so the JSON shape
// does not depend on how the caller built the request.
func (r *TxRequest) normalized() TxRequest {
	c := *r
	if c.Destinations == nil {
		c.Destinations = []Destination{}
	}
	raw := make([]RawTx, len(r.RawTx))
	for i, x := range r.RawTx {
		if x.KeyDerivationPath == nil {
			x.KeyDerivationPath = []uint32{}
		}
		raw[i] = x
	}
	c.RawTx = raw
	return c
}

// ConfigChangeRequest is a config-change approval request, sent to
// ConfigChangePath.
type ConfigChangeRequest struct {
	Type      ConfigChangeType `json:"type"`
	ExtraInfo map[string]any   `json:"extraInfo"`
	RequestID string           `json:"requestId"`
	SignerID  string           `json:"signerId"`
}

// ID returns the request's requestId.
func (r *ConfigChangeRequest) ID() string { return r.RequestID }

// Kind returns KindConfigChange.
func (r *ConfigChangeRequest) Kind() Kind { return KindConfigChange }

func (r *ConfigChangeRequest) validate() error {
	if r == nil {
		return fmt.Errorf("%w: nil config-change request", ErrInvalidRequest)
	}
	if err := validateID(r.RequestID); err != nil {
		return err
	}
	if !r.Type.Valid() {
		return fmt.Errorf("%w: unknown config-change type %d", ErrInvalidRequest, uint8(r.Type))
	}
	return nil
}

func (r *ConfigChangeRequest) normalized() ConfigChangeRequest {
	c := *r
	if c.ExtraInfo == nil {
		c.ExtraInfo = map[string]any{}
	}
	return c
}

func validateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: requestId is empty", ErrInvalidRequest)
	case len(id) > maxIDLen:
		return fmt.Errorf("%w: requestId longer than %d bytes", ErrInvalidRequest, maxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: requestId is not UTF-8", ErrInvalidRequest)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// ConfigChangeType is one of the eight config-change approval types.
type ConfigChangeType uint8

// The eight config-change types, with their protocol names.
const (
	ConfigExchange              ConfigChangeType = iota + 1 // EXCHANGE: a new exchange account
	ConfigFiatAccount                                       // FIAT_ACCOUNT: a new fiat account
	ConfigUnmanagedWallet                                   // UNMANAGED_WALLET: a new whitelisted address
	ConfigAddNetworkConnection                              // ADD_NETWORK_CONNECTION: a new network connection
	ConfigAddUser                                           // ADD_USER: a new console or API user
	ConfigChangeQuorumThreshold                             // CHANGE_QUORUM_THRESHOLD: an admin quorum change
	ConfigReEnrollDevice                                    // RE_ENROLL_DEVICE: a signing-device reset
	ConfigEnableOneTimeAddress                              // ENABLE_ONE_TIME_ADDRESS: enabling one-time addresses
)

var configChangeNames = [...]string{
	ConfigExchange:              "EXCHANGE",
	ConfigFiatAccount:           "FIAT_ACCOUNT",
	ConfigUnmanagedWallet:       "UNMANAGED_WALLET",
	ConfigAddNetworkConnection:  "ADD_NETWORK_CONNECTION",
	ConfigAddUser:               "ADD_USER",
	ConfigChangeQuorumThreshold: "CHANGE_QUORUM_THRESHOLD",
	ConfigReEnrollDevice:        "RE_ENROLL_DEVICE",
	ConfigEnableOneTimeAddress:  "ENABLE_ONE_TIME_ADDRESS",
}

// ConfigChangeTypes returns the eight types in protocol order. The caller
// owns the returned slice.
func ConfigChangeTypes() []ConfigChangeType {
	out := make([]ConfigChangeType, 0, len(configChangeNames)-1)
	for t := ConfigExchange; t <= ConfigEnableOneTimeAddress; t++ {
		out = append(out, t)
	}
	return out
}

// Valid reports whether t is one of the eight types.
func (t ConfigChangeType) Valid() bool {
	return t >= ConfigExchange && t <= ConfigEnableOneTimeAddress
}

// String returns the protocol name of the type, such as "ADD_USER".
func (t ConfigChangeType) String() string {
	if t.Valid() {
		return configChangeNames[t]
	}
	return fmt.Sprintf("ConfigChangeType(%d)", uint8(t))
}

// ParseConfigChangeType parses a protocol name, such as "ADD_USER". It is
// case-sensitive, as the protocol is; it wraps ErrInvalidRequest.
func ParseConfigChangeType(s string) (ConfigChangeType, error) {
	for t := ConfigExchange; t <= ConfigEnableOneTimeAddress; t++ {
		if configChangeNames[t] == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown config-change type %q", ErrInvalidRequest, truncate(s, 64))
}

// MarshalText encodes the type as its protocol name.
func (t ConfigChangeType) MarshalText() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("%w: unknown config-change type %d", ErrInvalidRequest, uint8(t))
	}
	return []byte(configChangeNames[t]), nil
}

// UnmarshalText decodes a protocol name.
func (t *ConfigChangeType) UnmarshalText(b []byte) error {
	v, err := ParseConfigChangeType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// truncate shortens outside text for an error message or a log line and
// replaces control characters, so it cannot forge log lines.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
