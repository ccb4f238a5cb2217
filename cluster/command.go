package cluster

import (
	"bytes"
	"fmt"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/protocol"
)

// CommandVersion is the only ClusterCommand version this build applies.
const CommandVersion = 1

// Limits on command fields. They are part of the FSM's deterministic rules,
// so they are constants: every replica must apply the same ones.
const (
	// maxIDLen bounds every id (request, node, key, presignature, record).
	maxIDLen = 256
	// maxReasonLen bounds a Complete's reason.
	maxReasonLen = 1024
	// maxBatch bounds the presignatures of one PresignaturesAdded.
	maxBatch = 1024
	// maxDecodeBytes bounds what Apply decodes, whatever Config says; a
	// proposer's own Config.MaxCommandBytes is smaller.
	maxDecodeBytes = 64 << 20
)

// EncodeCommand returns the canonical encoding of cmd.
func EncodeCommand(cmd *protocol.ClusterCommand) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	return b, nil
}

// DecodeCommand decodes and validates a command from the raft log or the
// forwarding path. It returns ErrTooLarge, ErrBadCommand or ErrBadVersion,
// never panics, and never echoes field contents that might be secret.
func DecodeCommand(data []byte) (*protocol.ClusterCommand, error) {
	if len(data) > maxDecodeBytes {
		return nil, errorf(ErrTooLarge, "%d bytes", len(data))
	}
	cmd := &protocol.ClusterCommand{}
	if err := proto.Unmarshal(data, cmd); err != nil {
		return nil, errorf(ErrBadCommand, "not a protobuf ClusterCommand")
	}
	if err := validateCommand(cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// validateCommand checks everything about a command that does not depend on
// the FSM's state.
func validateCommand(cmd *protocol.ClusterCommand) error {
	if cmd.GetVersion() != CommandVersion {
		return errorf(ErrBadVersion, "version %d", cmd.GetVersion())
	}
	if err := checkID("node", cmd.GetNode()); err != nil {
		return err
	}
	if cmd.GetProposedAtUnixNano() <= 0 {
		return errorf(ErrBadCommand, "missing proposer timestamp")
	}
	switch b := cmd.GetBody().(type) {
	case *protocol.ClusterCommand_Claim:
		if err := checkID("request", b.Claim.GetRequestId()); err != nil {
			return err
		}
		return checkOptionalID("api user", b.Claim.GetApiUserId())
	case *protocol.ClusterCommand_Reserve:
		r := b.Reserve
		if err := checkID("request", r.GetRequestId()); err != nil {
			return err
		}
		if err := checkID("key", r.GetKeyId()); err != nil {
			return err
		}
		if err := checkOptionalID("presignature", r.GetPresignatureId()); err != nil {
			return err
		}
		return validateDecision(r.GetDecision(), false)
	case *protocol.ClusterCommand_Complete:
		c := b.Complete
		if err := checkID("request", c.GetRequestId()); err != nil {
			return err
		}
		if outcomeFromProto(c.GetOutcome()) == OutcomeUnspecified {
			return errorf(ErrBadCommand, "complete without an outcome")
		}
		if len(c.GetReason()) > maxReasonLen {
			return errorf(ErrBadCommand, "reason longer than %d bytes", maxReasonLen)
		}
		return nil
	case *protocol.ClusterCommand_Release:
		if err := checkID("released node", b.Release.GetNode()); err != nil {
			return err
		}
		return checkOptionalID("api user", b.Release.GetApiUserId())
	case *protocol.ClusterCommand_PresignaturesAdded:
		return validatePresignaturesAdded(b.PresignaturesAdded)
	case *protocol.ClusterCommand_ApiUserAdded:
		return validateRecord("api user", b.ApiUserAdded.GetUser(), false)
	case *protocol.ClusterCommand_KeyRecordAdded:
		return validateRecord("key record", b.KeyRecordAdded.GetKey(), true)
	case *protocol.ClusterCommand_Confirm:
		return checkID("request", b.Confirm.GetRequestId())
	case *protocol.ClusterCommand_Sync:
		return nil
	case *protocol.ClusterCommand_CallbackSet:
		return validateCallback(b.CallbackSet.GetCallback())
	case *protocol.ClusterCommand_UserCallbackSet:
		return validateUserCallback(b.UserCallbackSet.GetUserCallback())
	case *protocol.ClusterCommand_UserCallbackCleared:
		return checkID("api user", b.UserCallbackCleared.GetUserId())
	case *protocol.ClusterCommand_Init:
		if err := checkID("cluster", b.Init.GetClusterId()); err != nil {
			return err
		}
		if err := validatePolicy(b.Init.GetPolicy()); err != nil {
			return err
		}
		return validateMember(b.Init.GetMember(), false)
	case *protocol.ClusterCommand_MemberAdded:
		return validateMember(b.MemberAdded.GetMember(), true)
	case *protocol.ClusterCommand_MemberRemoved:
		return checkID("removed member", b.MemberRemoved.GetId())
	case *protocol.ClusterCommand_PolicySet:
		return validatePolicy(b.PolicySet.GetPolicy())
	case *protocol.ClusterCommand_JoinTokenIssued:
		t := b.JoinTokenIssued
		if err := checkID("join token", t.GetId()); err != nil {
			return err
		}
		if len(t.GetSecretHash()) != 32 {
			return errorf(ErrBadCommand, "join token %q: secret hash of %d bytes, want 32", t.GetId(), len(t.GetSecretHash()))
		}
		return nil
	case *protocol.ClusterCommand_KeyringRotated:
		return validateKeyringRotated(b.KeyringRotated)
	case *protocol.ClusterCommand_KeyringAdopted:
		if b.KeyringAdopted.GetVersion() < firstKeyringVersion {
			return errorf(ErrBadCommand, "keyring version 0")
		}
		return nil
	case *protocol.ClusterCommand_RecordsResealed:
		return validateRecordsResealed(b.RecordsResealed)
	case *protocol.ClusterCommand_KeyRefreshed:
		return validateKeyRefreshed(b.KeyRefreshed)
	case *protocol.ClusterCommand_KeyringExported:
		return validateKeyringExported(b.KeyringExported)
	case *protocol.ClusterCommand_AuditTruncate:
		if b.AuditTruncate.GetUpTo() == 0 || len(b.AuditTruncate.GetHash()) != audit.HashSize {
			return errorf(ErrBadCommand, "audit truncation needs an entry number and its %d-byte hash", audit.HashSize)
		}
		return nil
	case *protocol.ClusterCommand_Decide:
		if err := checkID("request", b.Decide.GetRequestId()); err != nil {
			return err
		}
		return validateDecision(b.Decide.GetDecision(), true)
	default:
		return errorf(ErrBadCommand, "no body")
	}
}

// KeyRefreshedCommand returns a command replacing the share of key record
// key, of epoch from, with sealed, of epoch epoch.
func KeyRefreshedCommand(key string, from, epoch, sealed []byte) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyRefreshed{KeyRefreshed: &protocol.ClusterKeyRefreshed{
		KeyId: key, FromEpoch: from, Epoch: epoch, Sealed: sealed,
	}}}
}

// KeyringExportedCommand returns a command recording a keyring export to
// the age recipients, of the keyring versions.
func KeyringExportedCommand(recipients []string, versions []uint32) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyringExported{KeyringExported: &protocol.ClusterKeyringExported{
		Recipients: recipients, Versions: versions,
	}}}
}

// Bounds on a keyring export's record: age X25519 recipients are 62
// characters.
const (
	maxExportRecipients = 16
	maxRecipientLen     = 128
	maxExportVersions   = 1024
)

func validateKeyringExported(c *protocol.ClusterKeyringExported) error {
	if n := len(c.GetRecipients()); n == 0 || n > maxExportRecipients {
		return errorf(ErrBadCommand, "keyring export to %d recipients, want 1..%d", n, maxExportRecipients)
	}
	for _, r := range c.GetRecipients() {
		if r == "" || len(r) > maxRecipientLen || !printable(r) {
			return errorf(ErrBadCommand, "keyring export: a recipient of %d bytes that is not printable ASCII", len(r))
		}
	}
	if n := len(c.GetVersions()); n == 0 || n > maxExportVersions {
		return errorf(ErrBadCommand, "keyring export of %d versions, want 1..%d", n, maxExportVersions)
	}
	return nil
}

// printable reports whether s is printable ASCII.
func printable(s string) bool {
	for i := range len(s) {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// maxEpoch bounds a key share's epoch (32 bytes from the MPC library).
const maxEpoch = 64

func validateKeyRefreshed(c *protocol.ClusterKeyRefreshed) error {
	if err := checkID("key", c.GetKeyId()); err != nil {
		return err
	}
	switch {
	case len(c.GetEpoch()) == 0 || len(c.GetEpoch()) > maxEpoch || len(c.GetFromEpoch()) > maxEpoch:
		return errorf(ErrBadCommand, "key %q: epochs of %d and %d bytes, want 1..%d", c.GetKeyId(), len(c.GetFromEpoch()), len(c.GetEpoch()), maxEpoch)
	case bytes.Equal(c.GetEpoch(), c.GetFromEpoch()):
		return errorf(ErrBadCommand, "key %q: a refresh must change the epoch", c.GetKeyId())
	case len(c.GetSealed()) == 0:
		return errorf(ErrBadCommand, "key %q: no sealed share", c.GetKeyId())
	}
	return nil
}

func validatePresignaturesAdded(a *protocol.ClusterPresignaturesAdded) error {
	if err := checkID("key", a.GetKeyId()); err != nil {
		return err
	}

	n := len(a.GetPresignatures())
	if n == 0 || n > maxBatch {
		return errorf(ErrBadCommand, "%d presignatures in one batch, want 1..%d", n, maxBatch)
	}
	if err := checkOptionalID("reserving request", a.GetReserveFor()); err != nil {
		return err
	}
	if a.GetReserveFor() != "" && n != 1 {
		return errorf(ErrBadCommand, "%d presignatures added to reserve for one request, want 1", n)
	}
	if a.GetDecision() != nil && a.GetReserveFor() == "" {
		return errorf(ErrBadCommand, "a decision without a request to reserve for")
	}
	if err := validateDecision(a.GetDecision(), false); err != nil {
		return err
	}
	seen := make(map[string]bool, n)
	var last uint64
	for _, p := range a.GetPresignatures() {
		if err := checkID("presignature", p.GetId()); err != nil {
			return err
		}
		if seen[p.GetId()] {
			return errorf(ErrBadCommand, "presignature %q twice in one batch", p.GetId())
		}
		seen[p.GetId()] = true
		if len(p.GetSealed()) == 0 {
			return errorf(ErrBadCommand, "presignature %q has no sealed share", p.GetId())
		}
		if len(p.GetKeyEpoch()) > maxEpoch {
			return errorf(ErrBadCommand, "presignature %q: epoch of %d bytes, want at most %d", p.GetId(), len(p.GetKeyEpoch()), maxEpoch)
		}
		if p.GetOriginSeq() <= last {
			return errorf(ErrBadCommand, "presignature %q: origin numbers must start at 1 and ascend", p.GetId())
		}
		last = p.GetOriginSeq()
	}
	return nil
}

// Bounds on member-table fields.
const (
	maxAddressLen  = 256
	maxLocationLen = 128
	maxRules       = 64
	maxIdentityLen = 64 // a measurement, signer, product or hardware model
	// maxIssuerLen bounds a confidential-space rule's issuer URL.
	maxIssuerLen = 512
	// maxHardwareModels bounds a confidential-space rule's hardware models.
	maxHardwareModels = 16
)

func validateMember(m *protocol.ClusterMember, joined bool) error {
	if m == nil {
		return errorf(ErrBadCommand, "missing member")
	}
	if err := checkID("member", m.GetId()); err != nil {
		return err
	}
	switch {
	case len(m.GetIdentityKey()) != 32:
		return errorf(ErrBadCommand, "member %q: identity key of %d bytes, want 32", m.GetId(), len(m.GetIdentityKey()))
	case m.GetAddress() == "" || len(m.GetAddress()) > maxAddressLen:
		return errorf(ErrBadCommand, "member %q: address must have 1 to %d bytes", m.GetId(), maxAddressLen)
	case len(m.GetLocation()) > maxLocationLen:
		return errorf(ErrBadCommand, "member %q: location longer than %d bytes", m.GetId(), maxLocationLen)
	case joined && m.GetJoinedWith() == "":
		return errorf(ErrBadCommand, "member %q: no join token", m.GetId())
	}
	if err := checkOptionalID("join token", m.GetJoinedWith()); err != nil {
		return err
	}
	e := m.GetEnclave()
	if _, err := enclave.ParseKind(e.GetKind()); err != nil {
		return errorf(ErrBadCommand, "member %q: enclave kind %q", m.GetId(), e.GetKind())
	}
	return checkIdentityBytes("member "+m.GetId(), e.GetMeasurement(), e.GetSigner(), e.GetProduct())
}

func validatePolicy(p *protocol.ClusterPolicy) error {
	n := len(p.GetAllow())
	if n == 0 || n > maxRules {
		return errorf(ErrBadCommand, "policy of %d rules, want 1..%d", n, maxRules)
	}
	if err := policyFromProto(p).Validate(); err != nil {
		return errorf(ErrBadCommand, "policy: %v", err)
	}
	for _, r := range p.GetAllow() {
		if err := checkIdentityBytes("policy rule", r.GetMeasurement(), r.GetSigner(), r.GetProduct()); err != nil {
			return err
		}
		if len(r.GetIssuer()) > maxIssuerLen {
			return errorf(ErrBadCommand, "policy rule: issuer longer than %d bytes", maxIssuerLen)
		}
		if len(r.GetHardwareModels()) > maxHardwareModels {
			return errorf(ErrBadCommand, "policy rule: %d hardware models, at most %d", len(r.GetHardwareModels()), maxHardwareModels)
		}
		for _, m := range r.GetHardwareModels() {
			if len(m) > maxIdentityLen {
				return errorf(ErrBadCommand, "policy rule: hardware model longer than %d bytes", maxIdentityLen)
			}
		}
		seen := map[uint32]bool{}
		for _, pcr := range r.GetPcrs() {
			if seen[pcr.GetIndex()] {
				return errorf(ErrBadCommand, "policy rule: PCR%d appears twice", pcr.GetIndex())
			}
			seen[pcr.GetIndex()] = true
		}
	}
	return nil
}

// maxCallbackField bounds the callback handler's URL and key.
const maxCallbackField = 4096

func validateCallback(c *protocol.ClusterCallback) error {
	switch {
	case c == nil:
		return errorf(ErrBadCommand, "missing callback handler")
	case len(c.GetUrl()) > maxCallbackField || len(c.GetHandlerKey()) > maxCallbackField:
		return errorf(ErrBadCommand, "callback handler URL or key longer than %d bytes", maxCallbackField)
	case (c.GetUrl() == "") != (len(c.GetHandlerKey()) == 0):
		return errorf(ErrBadCommand, "a callback handler needs both a URL and a key, or neither")
	}
	return nil
}

func checkIdentityBytes(what string, fields ...[]byte) error {
	for _, f := range fields {
		if len(f) > maxIdentityLen {
			return errorf(ErrBadCommand, "%s: identity field longer than %d bytes", what, maxIdentityLen)
		}
	}
	return nil
}

func validateRecord(what string, r *protocol.ClusterRecord, needOwner bool) error {
	if r == nil {
		return errorf(ErrBadCommand, "%s: missing record", what)
	}
	if err := checkID(what, r.GetId()); err != nil {
		return err
	}
	if needOwner {
		if err := checkID(what+" owner", r.GetOwnerId()); err != nil {
			return err
		}
	} else if err := checkOptionalID(what+" owner", r.GetOwnerId()); err != nil {
		return err
	}
	if len(r.GetSealed()) == 0 {
		return errorf(ErrBadCommand, "%s %q has no sealed part", what, r.GetId())
	}
	return nil
}

func checkID(what, id string) error {
	if id == "" {
		return errorf(ErrBadCommand, "missing %s id", what)
	}
	return checkOptionalID(what, id)
}

func checkOptionalID(what, id string) error {
	if len(id) > maxIDLen {
		return errorf(ErrBadCommand, "%s id longer than %d bytes", what, maxIDLen)
	}
	// proto3 already rejects invalid UTF-8 in strings; this guards commands
	// built in process.
	if !utf8.ValidString(id) {
		return errorf(ErrBadCommand, "%s id is not UTF-8", what)
	}
	return nil
}

// Command builders. Each returns a command without version, node or
// timestamp; Cluster.Propose stamps those.

// ClaimCommand returns a Claim of request for API user apiUser.
func ClaimCommand(request, apiUser string) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_Claim{Claim: &protocol.ClusterClaim{
		RequestId: request, ApiUserId: apiUser,
	}}}
}

// ReserveCommand returns a Reserve of presignature p for request; an empty
// p.ID lets the FSM pick the oldest available presignature of p.KeyID.
func ReserveCommand(request string, p PresignatureRef) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_Reserve{Reserve: &protocol.ClusterReserve{
		RequestId: request, KeyId: p.KeyID, PresignatureId: p.ID,
	}}}
}

// CompleteCommand returns a Complete of request with its outcome and reason.
func CompleteCommand(request string, outcome Outcome, reason string) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_Complete{Complete: &protocol.ClusterComplete{
		RequestId: request, Outcome: outcome.proto(), Reason: reason,
	}}}
}

// ReleaseCommand returns a Release of node: of all its requests, or of
// those of apiUser when it is not empty.
func ReleaseCommand(node, apiUser string) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_Release{Release: &protocol.ClusterRelease{Node: node, ApiUserId: apiUser}}}
}

// SealedPresignature is one presignature share sealed under the keyring
// with PresignatureRecordID(key, proposer, OriginSeq, ID) as its record id.
type SealedPresignature struct {
	ID        string
	OriginSeq uint64
	Sealed    []byte
	// KeyEpoch is the epoch of the key share it was made with.
	KeyEpoch []byte
}

// PresignaturesAddedCommand returns a command adding sealed presignatures to
// the pool of key and, with a non-empty reserveFor, reserving the one
// presignature for that request.
func PresignaturesAddedCommand(key, reserveFor string, ps []SealedPresignature) *protocol.ClusterCommand {
	a := &protocol.ClusterPresignaturesAdded{KeyId: key, ReserveFor: reserveFor}
	for _, p := range ps {
		a.Presignatures = append(a.Presignatures, &protocol.ClusterSealedPresignature{Id: p.ID, Sealed: p.Sealed, OriginSeq: p.OriginSeq,
			KeyEpoch: p.KeyEpoch})
	}
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_PresignaturesAdded{PresignaturesAdded: a}}
}

// APIUserAddedCommand returns a command recording an API user.
func APIUserAddedCommand(r Record) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_ApiUserAdded{ApiUserAdded: &protocol.ClusterAPIUserAdded{
		User: r.proto(),
	}}}
}

// KeyRecordAddedCommand returns a command recording a key; r.OwnerID names
// its API user.
func KeyRecordAddedCommand(r Record) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyRecordAdded{KeyRecordAdded: &protocol.ClusterKeyRecordAdded{
		Key: r.proto(),
	}}}
}

// CallbackSetCommand returns a command recording the cluster's callback
// handler: its URL and its public key (PKIX DER), or neither for a cluster
// that approves by itself.
func CallbackSetCommand(url string, handlerKey []byte) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_CallbackSet{CallbackSet: &protocol.ClusterCallbackSet{
		Callback: &protocol.ClusterCallback{Url: url, HandlerKey: handlerKey},
	}}}
}

// SyncCommand returns a command that changes nothing.
func SyncCommand() *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_Sync{Sync: &protocol.ClusterSync{}}}
}

// ConfirmCommand returns a Confirm that the proposer still owns request.
func ConfirmCommand(request string) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_Confirm{Confirm: &protocol.ClusterConfirm{RequestId: request}}}
}

// InitCommand returns the Init of a new cluster whose first member is m.
func InitCommand(clusterID string, policy enclave.Policy, m Member) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_Init{Init: &protocol.ClusterInit{
		ClusterId: clusterID, Policy: PolicyProto(policy), Member: m.proto(),
	}}}
}

// MemberAddedCommand returns a command recording m, which joined with the
// join token m.JoinedWith.
func MemberAddedCommand(m Member) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_MemberAdded{MemberAdded: &protocol.ClusterMemberAdded{Member: m.proto()}}}
}

// MemberRemovedCommand returns a command removing member id.
func MemberRemovedCommand(id string) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_MemberRemoved{MemberRemoved: &protocol.ClusterMemberRemoved{Id: id}}}
}

// PolicySetCommand returns a command replacing the attestation policy.
func PolicySetCommand(p enclave.Policy) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_PolicySet{PolicySet: &protocol.ClusterPolicySet{Policy: PolicyProto(p)}}}
}

// JoinTokenIssuedCommand returns a command recording a join token.
func JoinTokenIssuedCommand(id string, secretHash []byte, expires time.Time) *protocol.ClusterCommand {
	return &protocol.ClusterCommand{Body: &protocol.ClusterCommand_JoinTokenIssued{JoinTokenIssued: &protocol.ClusterJoinTokenIssued{
		Id: id, SecretHash: secretHash, ExpiresAtUnixNano: expires.UnixNano(),
	}}}
}

func (r Record) proto() *protocol.ClusterRecord {
	return &protocol.ClusterRecord{Id: r.ID, OwnerId: r.OwnerID, Public: r.Public, Sealed: r.Sealed, Epoch: r.Epoch}
}

// stamp fills in the envelope of cmd.
func stamp(cmd *protocol.ClusterCommand, node string, now time.Time) {
	cmd.Version = CommandVersion
	cmd.Node = node
	cmd.ProposedAtUnixNano = now.UnixNano()
}
