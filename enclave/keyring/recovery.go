package keyring

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// A recovery file holds the keyring encrypted to operators' offline
// recovery keys with age (X25519 recipients), for rebuilding a cluster
// whose every enclave is lost:
//
//	coterie-keyring-recovery v1
//	{"cluster_id":...,"versions":[...],...}   the header, in the clear
//	-----BEGIN AGE ENCRYPTED FILE-----        armored age, whose plaintext is
//	...                                       the header line again, a
//	-----END AGE ENCRYPTED FILE-----          newline, then the keyring's encoding
//
// The header says which cluster and key versions the file holds; none of
// it is secret. The copy inside the encryption authenticates it: Import
// refuses a file whose header differs from the one it decrypts.
const recoveryMagic = "coterie-keyring-recovery v1\n"

// Limits of what ImportRecovery reads.
const (
	maxRecoveryHeader = 16 << 10
	maxRecoveryFile   = 4 << 20
)

// Errors of ExportRecovery and ImportRecovery. None of them carries key
// material.
var (
	// ErrRecoveryFormat is returned when a file is not a well-formed
	// recovery file, or its header does not match the encrypted copy.
	ErrRecoveryFormat = errors.New("keyring: not a well-formed keyring recovery file")
	// ErrRecoveryIdentity is returned when none of the identities given
	// opens the file: it was encrypted to other recovery keys.
	ErrRecoveryIdentity = errors.New("keyring: the recovery file is not encrypted to this identity")
)

// RecoveryHeader describes a recovery file, in the clear.
type RecoveryHeader struct {
	ClusterID string `json:"cluster_id"`
	// Versions are the key versions the file holds, ascending; Current is
	// the one new records use.
	Versions []uint32 `json:"versions"`
	Current  uint32   `json:"current"`
	// Node is the node that exported it, at ExportedAt.
	Node       string    `json:"node"`
	ExportedAt time.Time `json:"exported_at"`
	// Recipients are the age recipients (public keys) it is encrypted to.
	Recipients []string `json:"recipients"`
}

// ExportRecovery writes the keyring to w as a recovery file encrypted to
// recipients, with h's cluster, node and time (ExportRecovery fills in the
// versions and the recipients). The plaintext keyring exists only in this
// call's memory.
func (k *Keyring) ExportRecovery(w io.Writer, h RecoveryHeader, recipients ...*age.X25519Recipient) error {
	if len(recipients) == 0 {
		return errors.New("keyring: a recovery file needs at least one recipient")
	}
	k.mu.RLock()
	h.Versions, h.Current = k.versionsLocked(), k.current
	k.mu.RUnlock()
	h.Recipients = nil
	rs := make([]age.Recipient, 0, len(recipients))
	for _, r := range recipients {
		h.Recipients = append(h.Recipients, r.String())
		rs = append(rs, r)
	}
	line, err := json.Marshal(h)
	if err != nil {
		return err
	}
	plain := k.marshal()
	defer clear(plain)
	var buf bytes.Buffer
	buf.WriteString(recoveryMagic)
	buf.Write(line)
	buf.WriteByte('\n')
	aw := armor.NewWriter(&buf)
	ew, err := age.Encrypt(aw, rs...)
	if err != nil {
		return fmt.Errorf("keyring: recovery: %w", err)
	}
	for _, part := range [][]byte{line, {'\n'}, plain} {
		if _, err := ew.Write(part); err != nil {
			return fmt.Errorf("keyring: recovery: %w", err)
		}
	}
	if err := ew.Close(); err != nil {
		return fmt.Errorf("keyring: recovery: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("keyring: recovery: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// ReadRecoveryHeader reads a recovery file's header without decrypting
// anything.
func ReadRecoveryHeader(r io.Reader) (RecoveryHeader, error) {
	h, _, _, err := splitRecovery(r)
	return h, err
}

// ImportRecovery decrypts a recovery file with the operator's identities
// and returns its header and keyring. Errors: ErrRecoveryFormat,
// ErrRecoveryIdentity, ErrMalformedKeyring; none holds key material.
func ImportRecovery(r io.Reader, identities ...age.Identity) (RecoveryHeader, *Keyring, error) {
	h, line, body, err := splitRecovery(r)
	if err != nil {
		return RecoveryHeader{}, nil, err
	}
	dr, err := age.Decrypt(armor.NewReader(bytes.NewReader(body)), identities...)
	if err != nil {
		var miss *age.NoIdentityMatchError
		if errors.As(err, &miss) {
			return RecoveryHeader{}, nil, ErrRecoveryIdentity
		}
		return RecoveryHeader{}, nil, fmt.Errorf("%w: the encrypted part does not open", ErrRecoveryFormat)
	}
	plain, err := io.ReadAll(io.LimitReader(dr, maxRecoveryFile))
	defer clear(plain)
	if err != nil {
		return RecoveryHeader{}, nil, fmt.Errorf("%w: the encrypted part is damaged", ErrRecoveryFormat)
	}
	inner, rest, ok := bytes.Cut(plain, []byte{'\n'})
	if !ok || !bytes.Equal(inner, line) {
		return RecoveryHeader{}, nil, fmt.Errorf("%w: the header does not match the encrypted copy (tampered)", ErrRecoveryFormat)
	}
	kr, err := unmarshal(rest)
	if err != nil {
		return RecoveryHeader{}, nil, err
	}
	return h, kr, nil
}

// splitRecovery reads a recovery file into its header, the header's line
// and the armored body.
func splitRecovery(r io.Reader) (RecoveryHeader, []byte, []byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxRecoveryFile+1))
	if err != nil {
		return RecoveryHeader{}, nil, nil, err
	}
	if len(data) > maxRecoveryFile {
		return RecoveryHeader{}, nil, nil, fmt.Errorf("%w: larger than %d bytes", ErrRecoveryFormat, maxRecoveryFile)
	}
	rest, ok := bytes.CutPrefix(data, []byte(recoveryMagic))
	if !ok {
		return RecoveryHeader{}, nil, nil, fmt.Errorf("%w: it does not start with %q", ErrRecoveryFormat, recoveryMagic[:len(recoveryMagic)-1])
	}
	sc := bufio.NewScanner(bytes.NewReader(rest))
	sc.Buffer(nil, maxRecoveryHeader)
	if !sc.Scan() {
		return RecoveryHeader{}, nil, nil, fmt.Errorf("%w: no header", ErrRecoveryFormat)
	}
	line := bytes.Clone(sc.Bytes())
	var h RecoveryHeader
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil || h.ClusterID == "" || len(rest) <= len(line) {
		return RecoveryHeader{}, nil, nil, fmt.Errorf("%w: bad header", ErrRecoveryFormat)
	}
	return h, line, rest[len(line)+1:], nil
}
