package request

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coterie-mpc/coterie/protocol"
)

// Limits on what a submission may hold. Anything larger is refused, so that
// one request cannot bloat the store or a poller's stream.
const (
	MaxTextLen        = 128
	MaxAddressLen     = 256
	MaxNoteLen        = 1024
	MaxReasonLen      = 1024
	MaxDestinations   = 32
	MaxDigests        = 16
	MaxPathDepth      = 10
	MaxIdempotencyLen = 128
	MaxTTL            = 30 * 24 * time.Hour
	DigestLen         = 32
	SignatureLen      = 64
	// MaxHardened is the first hardened BIP-32 index; paths are unhardened.
	MaxHardened = 1 << 31
)

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("request: invalid")

// problems collects validation problems so that all are reported at once.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(p, "; "))
}

var (
	assetRe   = regexp.MustCompile(`^[A-Z0-9_]{1,24}$`)
	decimalRe = regexp.MustCompile(`^(0|[1-9][0-9]{0,29})(\.[0-9]{1,18})?$`)
	idRe      = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	upperRe   = regexp.MustCompile(`^[A-Z0-9_]{1,32}$`)
	currRe    = regexp.MustCompile(`^[A-Z]{3}$`)
)

// Peer types a transaction may name.
var peerTypes = map[string]bool{
	"VAULT_ACCOUNT": true, "EXCHANGE_ACCOUNT": true, "INTERNAL_WALLET": true, "EXTERNAL_WALLET": true,
	"ONE_TIME_ADDRESS": true, "NETWORK_CONNECTION": true, "FIAT_ACCOUNT": true,
}

// Operations a transaction may carry ("" means TRANSFER).
var operations = map[string]bool{"": true, "TRANSFER": true, "RAW": true, "CONTRACT_CALL": true, "TYPED_MESSAGE": true}

// ValidID reports whether s is a well-formed workspace identifier: 1 to 64
// characters of [A-Za-z0-9._-].
func ValidID(s string) bool { return idRe.MatchString(s) }

// text checks a free-text field: valid UTF-8, no control characters, at
// most max bytes, and present when required.
func (p *problems) text(name, s string, max int, required bool) {
	switch {
	case s == "" && required:
		p.addf("%s is required", name)
	case len(s) > max:
		p.addf("%s is longer than %d bytes", name, max)
	case !utf8.ValidString(s):
		p.addf("%s is not UTF-8", name)
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }):
		p.addf("%s has control characters", name)
	}
}

func (p *problems) decimal(name, s string, positive bool) *big.Rat {
	if !decimalRe.MatchString(s) {
		p.addf("%s %q is not a decimal amount", name, clip(s))
		return nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		p.addf("%s %q is not a decimal amount", name, clip(s))
		return nil
	}
	if positive && r.Sign() <= 0 {
		p.addf("%s must be positive", name)
		return nil
	}
	return r
}

// clip shortens outside input quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ValidateTransaction checks a transaction body. The source must be a vault
// account; whether it exists is the store's check.
func ValidateTransaction(tx *protocol.WsTransaction) error {
	var p problems
	if tx == nil {
		p.addf("transaction is required")
		return p.err()
	}
	if !assetRe.MatchString(tx.GetAsset()) {
		p.addf("asset %q must be 1-24 of A-Z, 0-9, _", clip(tx.GetAsset()))
	}
	// A RAW transaction signs the caller's digests: it may state no amount
	// and name no destination.
	raw := tx.GetOperation() == "RAW"
	var total *big.Rat
	if !raw || tx.GetAmount() != "" {
		total = p.decimal("amount", tx.GetAmount(), !raw)
	}
	if tx.GetFee() != "" {
		p.decimal("fee", tx.GetFee(), false)
	}
	if !operations[tx.GetOperation()] {
		p.addf("operation %q is unknown", clip(tx.GetOperation()))
	}
	p.text("note", tx.GetNote(), MaxNoteLen, false)

	src := tx.GetSource()
	if src.GetType() != "VAULT_ACCOUNT" {
		p.addf("source must be a VAULT_ACCOUNT")
	} else if _, err := VaultIndex(src.GetId()); err != nil {
		p.addf("source vault account ID %q is not a number below 2^31", clip(src.GetId()))
	}

	dests := tx.GetDestinations()
	switch {
	case len(dests) == 0 && raw:
	case len(dests) == 0:
		p.addf("at least one destination is required")
	case len(dests) > MaxDestinations:
		p.addf("more than %d destinations", MaxDestinations)
	default:
		sum, given := new(big.Rat), 0
		for i, d := range dests {
			name := fmt.Sprintf("destination %d", i)
			peer := d.GetPeer()
			if !peerTypes[peer.GetType()] {
				p.addf("%s has unknown type %q", name, clip(peer.GetType()))
			}
			if peer.GetType() == "ONE_TIME_ADDRESS" {
				p.text(name+" address", peer.GetAddress(), MaxAddressLen, true)
			} else {
				p.text(name+" id", peer.GetId(), MaxTextLen, true)
				p.text(name+" address", peer.GetAddress(), MaxAddressLen, false)
			}
			if d.GetAmount() != "" {
				if a := p.decimal(name+" amount", d.GetAmount(), true); a != nil {
					sum.Add(sum, a)
				}
				given++
			}
		}
		switch {
		case given == 0 && len(dests) > 1:
			p.addf("destination amounts are required with several destinations")
		case given > 0 && given < len(dests):
			p.addf("either every destination has an amount or none does")
		case given > 0 && total != nil && sum.Cmp(total) != 0:
			p.addf("destination amounts add up to %s, not the amount %s", sum.FloatString(18), tx.GetAmount())
		}
	}

	switch {
	case len(tx.GetDigests()) > MaxDigests:
		p.addf("more than %d digests", MaxDigests)
	case raw && len(tx.GetDigests()) == 0:
		p.addf("a RAW transaction names the digests to sign")
	default:
		for i, d := range tx.GetDigests() {
			p.digest(fmt.Sprintf("digest %d", i), d)
		}
	}
	return p.err()
}

// FillAmounts gives the only destination of a transaction the
// transaction's amount when the submission stated none, so that every
// destination of a stored transaction carries its amount (a callback
// handler's per-destination limits must see it). tx must have passed
// ValidateTransaction, which refuses several destinations without amounts.
func FillAmounts(tx *protocol.WsTransaction) {
	if d := tx.GetDestinations(); len(d) == 1 && d[0].GetAmount() == "" {
		d[0].Amount = tx.GetAmount()
	}
}

func (p *problems) digest(name string, d *protocol.WsDigestToSign) {
	if len(d.GetDigest()) != DigestLen {
		p.addf("%s must be %d bytes", name, DigestLen)
	}
	path := d.GetDerivationPath()
	if len(path) == 0 || len(path) > MaxPathDepth {
		p.addf("%s derivation path must have 1 to %d elements", name, MaxPathDepth)
	}
	for _, e := range path {
		if e >= MaxHardened {
			p.addf("%s derivation path element %d is hardened", name, e)
			break
		}
	}
}

// VaultIndex parses a vault account ID.
func VaultIndex(id string) (uint32, error) {
	n, err := strconv.ParseUint(id, 10, 31)
	if err != nil || strconv.FormatUint(n, 10) != id {
		return 0, fmt.Errorf("%w: vault account ID %q", ErrInvalid, clip(id))
	}
	return uint32(n), nil
}

// payloadTypes maps each config-change type to the payload it needs.
var payloadTypes = map[protocol.WsConfigChangeType]func(*protocol.WsConfigChange) bool{
	protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_EXCHANGE:                func(c *protocol.WsConfigChange) bool { return c.GetExchange() != nil },
	protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_FIAT_ACCOUNT:            func(c *protocol.WsConfigChange) bool { return c.GetFiatAccount() != nil },
	protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_UNMANAGED_WALLET:        func(c *protocol.WsConfigChange) bool { return c.GetUnmanagedWallet() != nil },
	protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_NETWORK_CONNECTION:  func(c *protocol.WsConfigChange) bool { return c.GetNetworkConnection() != nil },
	protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_USER:                func(c *protocol.WsConfigChange) bool { return c.GetAddUser() != nil },
	protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_CHANGE_QUORUM_THRESHOLD: func(c *protocol.WsConfigChange) bool { return c.GetQuorumChange() != nil },
	protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_RE_ENROLL_DEVICE:        func(c *protocol.WsConfigChange) bool { return c.GetDeviceReEnroll() != nil },
	protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS: func(c *protocol.WsConfigChange) bool { return c.GetOneTimeAddress() != nil },
}

// ValidateConfigChange checks a config-change body: a known type, the
// payload of that type, and the payload's fields.
func ValidateConfigChange(c *protocol.WsConfigChange) error {
	var p problems
	if c == nil {
		p.addf("config change is required")
		return p.err()
	}
	matches, ok := payloadTypes[c.GetType()]
	if !ok {
		p.addf("config-change type %d is unknown", c.GetType())
		return p.err()
	}
	if !matches(c) {
		p.addf("payload does not match type %s", TypeName(c.GetType()))
		return p.err()
	}
	switch c.GetPayload().(type) {
	case *protocol.WsConfigChange_Exchange:
		e := c.GetExchange()
		if !upperRe.MatchString(e.GetExchangeType()) {
			p.addf("exchange type must be 1-32 of A-Z, 0-9, _")
		}
		p.text("name", e.GetName(), MaxTextLen, true)
		p.text("account ID", e.GetAccountId(), MaxTextLen, false)
	case *protocol.WsConfigChange_FiatAccount:
		f := c.GetFiatAccount()
		p.text("provider", f.GetProvider(), MaxTextLen, true)
		p.text("name", f.GetName(), MaxTextLen, true)
		p.text("account number", f.GetAccountNumber(), MaxTextLen, true)
		if f.GetCurrency() != "" && !currRe.MatchString(f.GetCurrency()) {
			p.addf("currency must be three letters A-Z")
		}
	case *protocol.WsConfigChange_UnmanagedWallet:
		w := c.GetUnmanagedWallet()
		p.text("name", w.GetName(), MaxTextLen, true)
		if !assetRe.MatchString(w.GetAsset()) {
			p.addf("asset %q must be 1-24 of A-Z, 0-9, _", clip(w.GetAsset()))
		}
		p.text("address", w.GetAddress(), MaxAddressLen, true)
		p.text("tag", w.GetTag(), MaxTextLen, false)
	case *protocol.WsConfigChange_NetworkConnection:
		n := c.GetNetworkConnection()
		p.text("peer network ID", n.GetPeerNetworkId(), MaxTextLen, true)
		p.text("name", n.GetName(), MaxTextLen, true)
		p.text("routing policy", n.GetRoutingPolicy(), MaxTextLen, false)
	case *protocol.WsConfigChange_AddUser:
		u := c.GetAddUser()
		p.text("email", u.GetEmail(), MaxTextLen, true)
		if u.GetEmail() != "" && !strings.Contains(u.GetEmail(), "@") {
			p.addf("email must contain @")
		}
		p.text("name", u.GetName(), MaxTextLen, false)
		p.text("role", u.GetRole(), MaxTextLen, true)
	case *protocol.WsConfigChange_QuorumChange:
		q := c.GetQuorumChange()
		if q.GetAdmins() == 0 || q.GetAdmins() > 1000 {
			p.addf("admins must be 1 to 1000")
		}
		if q.GetNewThreshold() == 0 || q.GetNewThreshold() > q.GetAdmins() {
			p.addf("new threshold must be 1 to the number of admins")
		}
		if q.GetNewThreshold() == q.GetOldThreshold() {
			p.addf("new threshold equals the old one")
		}
	case *protocol.WsConfigChange_DeviceReEnroll:
		d := c.GetDeviceReEnroll()
		p.text("user email", d.GetUserEmail(), MaxTextLen, true)
		p.text("device ID", d.GetDeviceId(), MaxTextLen, true)
	case *protocol.WsConfigChange_OneTimeAddress:
		// A bool: nothing to check.
	}
	return p.err()
}

// TypeName returns the short name of a config-change type (EXCHANGE, ...),
// as the command line and the callback protocol spell it.
func TypeName(t protocol.WsConfigChangeType) string {
	return strings.TrimPrefix(t.String(), "WS_CONFIG_CHANGE_TYPE_")
}

// ParseType parses a short config-change type name.
func ParseType(s string) (protocol.WsConfigChangeType, error) {
	v, ok := protocol.WsConfigChangeType_value["WS_CONFIG_CHANGE_TYPE_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("%w: config-change type %q is unknown", ErrInvalid, clip(s))
	}
	return protocol.WsConfigChangeType(v), nil
}

func (p *problems) common(userID, idem string, ttl uint32) {
	if !ValidID(userID) {
		p.addf("user ID %q is malformed", clip(userID))
	}
	if len(idem) > MaxIdempotencyLen || !utf8.ValidString(idem) || strings.ContainsFunc(idem, unicode.IsControl) {
		p.addf("idempotency key must be at most %d printable bytes", MaxIdempotencyLen)
	}
	if time.Duration(ttl)*time.Second > MaxTTL {
		p.addf("ttl is longer than %s", MaxTTL)
	}
}

// ValidateSubmitTransaction checks a transaction submission.
func ValidateSubmitTransaction(r *protocol.WsSubmitTransactionRequest) error {
	var p problems
	p.common(r.GetUserId(), r.GetIdempotencyKey(), r.GetTtlSeconds())
	if err := ValidateTransaction(r.GetTransaction()); err != nil {
		p.addf("%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	return p.err()
}

// ValidateSubmitConfigChange checks a config-change submission.
func ValidateSubmitConfigChange(r *protocol.WsSubmitConfigChangeRequest) error {
	var p problems
	p.common(r.GetUserId(), r.GetIdempotencyKey(), r.GetTtlSeconds())
	if err := ValidateConfigChange(r.GetConfigChange()); err != nil {
		p.addf("%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	return p.err()
}

// ValidateSignature checks a signature report's shape; whether the
// signature verifies is the server's check.
func ValidateSignature(r *protocol.WsSubmitSignatureRequest) error {
	var p problems
	if !ValidID(r.GetRequestId()) {
		p.addf("request ID is malformed")
	}
	if r.GetDigestIndex() >= MaxDigests {
		p.addf("digest index %d is out of range", r.GetDigestIndex())
	}
	if len(r.GetSignature()) != SignatureLen {
		p.addf("signature must be %d bytes (r||s)", SignatureLen)
	}
	return p.err()
}

// ValidateApproval checks an approval report's shape.
func ValidateApproval(r *protocol.WsSubmitApprovalRequest) error {
	var p problems
	if !ValidID(r.GetRequestId()) {
		p.addf("request ID is malformed")
	}
	if len(r.GetSignature()) != 64 {
		p.addf("approval signature must be 64 bytes (Ed25519)")
	}
	return p.err()
}

// ValidateIgnore checks an IGNORE report; its reason is optional.
func ValidateIgnore(requestID, reason string) error {
	var p problems
	if !ValidID(requestID) {
		p.addf("request ID is malformed")
	}
	p.text("reason", reason, MaxReasonLen, false)
	return p.err()
}

// ValidateReason checks a rejection or failure report.
func ValidateReason(requestID, reason string) error {
	var p problems
	if !ValidID(requestID) {
		p.addf("request ID is malformed")
	}
	p.text("reason", reason, MaxReasonLen, true)
	return p.err()
}
