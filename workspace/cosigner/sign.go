package cosigner

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/store"
	"github.com/coterie-mpc/coterie/workspace/verify"
)

// sign runs the cloud co-signers' side of an online signing round.
//
// StartSign's commit marks the presignature used (I1), and its fsync is
// most of the wait before the round can start. While it runs, sign does the
// work that needs no mark from what the store holds already: it reads the
// request's digest and the presignature's encrypted shares, derives the
// public key that will check the result, and builds each cloud co-signer's
// session (key share, decrypted presignature share, first message). No
// envelope leaves before the commit: only drive routes the sessions' first
// messages, and it runs after StartSign has returned. If the commit returns
// other inputs than the ones read (it never does: a request's digests and a
// presignature's shares are written once), the sessions are built again
// from the committed ones; if it fails, the sessions are closed unused.
func (c *Cosigners) sign(ctx context.Context, u *protocol.WsUser, start *protocol.WsMpcStart, in <-chan *protocol.MpcEnvelope, send func(*protocol.MpcEnvelope) error) (*protocol.WsMpcResult, error) {
	id, err := mpc.ParsePresignatureID(start.GetPresignId())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadStart, err)
	}
	key := u.GetSigningKey()
	cloud, err := c.cloudOf(key.GetSignerPartyIds(), key.GetNodePartyId())
	if err != nil {
		return nil, err
	}
	index := start.GetDigestIndex()
	slot := fmt.Sprintf("%s/%d", start.GetRequestId(), index)
	c.mu.Lock()
	_, busy := c.signing[slot]
	c.signing[slot] = struct{}{}
	c.mu.Unlock()
	if busy {
		return nil, fmt.Errorf("%w: %s digest %d", ErrBusy, start.GetRequestId(), index)
	}
	defer func() {
		c.mu.Lock()
		delete(c.signing, slot)
		c.mu.Unlock()
	}()

	type started struct {
		req    *protocol.WsRequest
		sealed map[string][]byte
		err    error
	}
	committed := make(chan started, 1)
	go func() {
		// From this commit on the presignature is spent, whatever happens.
		req, sealed, err := c.store.StartSign(u.Id, start.GetRequestId(), index, id)
		committed <- started{req, sealed, err}
	}()
	early := c.prepareEarly(ctx, u, start, id, cloud)
	st := <-committed
	if st.err != nil {
		early.close()
		return nil, st.err
	}
	digest := st.req.GetTransaction().GetDigests()[index]
	p := early
	if !p.fits(digest, st.sealed) {
		early.close()
		if p, err = c.prepareSign(ctx, u, start, id, cloud, digest, st.sealed); err != nil {
			return nil, err
		}
	}
	defer p.close()
	c.log.Info("online signing", "user", u.Id, "request", st.req.Id, "digest", index, "presignature", id.String())
	if err := c.drive(ctx, mpc.PartyID(key.GetNodePartyId()), machines(p.sessions), in, send); err != nil {
		return nil, err
	}
	sigs, err := results(p.sessions)
	if err != nil {
		return nil, err
	}
	var sig []byte
	for _, party := range cloud {
		b := sigs[party.id].Bytes()
		if sig != nil && !bytes.Equal(sig, b) {
			return nil, fmt.Errorf("%w: signature", ErrDisagree)
		}
		sig = b
	}
	// The engine verified it; the workspace is the judge and checks again,
	// independently, against the key derived for the digest's path. Only a
	// signature that verifies is recorded, with its recovery ID.
	recoveryID, err := verify.SignatureUnder(p.pub, digest, sig)
	if err != nil {
		return nil, err
	}
	done, _, err := c.store.RecordSignature(u.Id, st.req.Id, index,
		store.Signed{Signature: sig, RecoveryID: recoveryID, PublicKey: p.pub, PresignID: id.String()}, "cosigner")
	if err != nil {
		return nil, err
	}
	return &protocol.WsMpcResult{Signature: sig, Recorded: true, Request: done}, nil
}

// signPrep is what an online round needs before it can run: the cloud
// co-signers' sessions, built on a digest and on the presignature's
// encrypted shares, and the derived public key that checks the result.
type signPrep struct {
	digest   *protocol.WsDigestToSign
	sealed   map[string][]byte
	pub      []byte
	sessions map[mpc.PartyID]*mpc.Session[*mpc.Signature]
}

// fits reports whether p was built on digest and sealed.
func (p *signPrep) fits(digest *protocol.WsDigestToSign, sealed map[string][]byte) bool {
	return p != nil && bytes.Equal(p.digest.GetDigest(), digest.GetDigest()) &&
		slices.Equal(p.digest.GetDerivationPath(), digest.GetDerivationPath()) &&
		maps.EqualFunc(p.sealed, sealed, bytes.Equal)
}

// close closes p's sessions; p may be nil.
func (p *signPrep) close() {
	if p != nil {
		closeAll(p.sessions)
	}
}

// prepareEarly prepares a round from the store's current state, before
// StartSign has committed. It returns nil, doing no work, when StartSign
// is bound to fail (the request is not open, the digest is signed, the
// presignature is unknown or used) or when anything else fails: StartSign
// then reports the error, or sign prepares again after it.
func (c *Cosigners) prepareEarly(ctx context.Context, u *protocol.WsUser, start *protocol.WsMpcStart, id mpc.PresignatureID, cloud []*party) *signPrep {
	r, err := c.store.UserRequest(u.Id, start.GetRequestId())
	if err != nil || store.Terminal(r.GetState()) {
		return nil
	}
	digests := r.GetTransaction().GetDigests()
	index := start.GetDigestIndex()
	if int(index) >= len(digests) || slices.ContainsFunc(r.GetSignatures(), func(s *protocol.WsDigestSignature) bool { return s.GetIndex() == index }) {
		return nil
	}
	rec, ok, err := c.store.Presignature(u.Id, id)
	if err != nil || !ok || rec.GetUsedAt() != 0 {
		return nil
	}
	p, err := c.prepareSign(ctx, u, start, id, cloud, digests[index], rec.GetShares())
	if err != nil {
		return nil
	}
	return p
}

// prepareSign builds the cloud co-signers' sessions on digest and on the
// presignature's encrypted shares sealed (party ID -> ciphertext), and
// derives the public key that checks the result, at the same time.
func (c *Cosigners) prepareSign(ctx context.Context, u *protocol.WsUser, start *protocol.WsMpcStart, id mpc.PresignatureID, cloud []*party, digest *protocol.WsDigestToSign, sealed map[string][]byte) (*signPrep, error) {
	key := u.GetSigningKey()
	p := &signPrep{digest: digest, sealed: sealed}
	var pubErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.pub, pubErr = c.derived.get(key, digest)
	}()
	signers := toParties(key.GetSignerPartyIds())
	sessions, err := build(cloud, func(party *party) (*mpc.Session[*mpc.Signature], error) {
		share, err := c.loadShare(u.Id, party)
		if err != nil {
			return nil, err
		}
		plain, err := party.kr.Decrypt(presigRecord(u.Id, id, party.id), sealed[string(party.id)])
		if err != nil {
			return nil, fmt.Errorf("cosigner: %s: presignature %s: %w", party.id, id, err)
		}
		pre, err := mpc.UnmarshalPresignature(plain)
		clear(plain)
		if err != nil {
			return nil, err
		}
		in := mpc.SignInput{Share: share, Digest: digest.GetDigest(), Path: mpc.Path(digest.GetDerivationPath())}
		return c.engine.PresignOnline(ctx, mpc.Params{SessionID: start.SessionId, Self: party.id, Parties: signers, Threshold: int(key.GetThreshold())}, in, mpc.OneUse(pre), id)
	})
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if pubErr != nil {
		closeAll(sessions)
		return nil, pubErr
	}
	p.sessions = sessions
	return p, nil
}
