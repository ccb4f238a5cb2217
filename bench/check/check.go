package check

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/verify"
)

// Check judges recs and returns every violation it finds, sorted.
func Check(recs Records) Report {
	rep := Report{Requests: len(recs.Requests), LedgerUses: len(recs.Ledger), Nodes: len(recs.Nodes), CallbackRead: recs.Callback != nil,
		LogsRead: len(recs.Logs), AuditsRead: len(recs.Audits)}
	for _, r := range recs.Requests {
		rep.Signatures += len(r.Signatures)
	}
	for _, n := range recs.Nodes {
		rep.Presignatures += len(n.Presignatures)
	}
	checkPresignatures(&rep, recs)
	checkOwners(&rep, recs.Nodes)
	checkLogs(&rep, recs)
	checkAudits(&rep, recs.Audits)
	for _, r := range recs.Requests {
		checkDigests(&rep, r)
		checkOutcome(&rep, r)
		checkSignatures(&rep, r, recs.Keys)
	}
	if recs.Callback != nil {
		checkApprovals(&rep, recs.Requests, recs.Callback)
	}
	rep.sort()
	return rep
}

// useSite is one place that ties a presignature to a request.
type useSite struct {
	request string
	where   string
}

// checkPresignatures judges I1: every source that names a presignature must
// name the same request; the ledger and the signatures may use it once; and
// the co-signers may not use one that a node's FSM still holds available,
// since the cluster could reserve it again.
func checkPresignatures(rep *Report, recs Records) {
	named := map[string][]useSite{}
	name := func(presig, request, where string) {
		if presig != "" && request != "" {
			named[presig] = append(named[presig], useSite{request, where})
		}
	}
	available := map[string][]string{} // presignature -> nodes that hold it available
	for _, n := range recs.Nodes {
		for _, r := range n.Requests {
			for _, p := range r.Reserved {
				name(p, r.ID, fmt.Sprintf("node %s reserved it for the request", n.ID))
			}
		}
		for _, p := range n.Presignatures {
			name(p.ID, p.RequestID, fmt.Sprintf("node %s records it %s for the request", n.ID, p.Status))
			if p.Status == PresignatureAvailable {
				available[p.ID] = append(available[p.ID], n.ID)
			}
		}
	}
	ledger := map[string][]useSite{}
	for _, u := range recs.Ledger {
		site := useSite{u.RequestID, fmt.Sprintf("the ledger used it for digest %d", u.DigestIndex)}
		ledger[u.PresignID] = append(ledger[u.PresignID], site)
		name(u.PresignID, u.RequestID, site.where)
		if nodes := available[u.PresignID]; len(nodes) > 0 {
			rep.add(I1, u.RequestID, "presignature %s was used by the cloud co-signers while node(s) %s hold it available", u.PresignID, strings.Join(nodes, ", "))
		}
	}
	signed := map[string][]useSite{}
	for _, r := range recs.Requests {
		seen := map[string]bool{}
		for _, s := range r.Signatures {
			key := fmt.Sprintf("%s#%d", s.PresignID, s.Index)
			if s.PresignID == "" || seen[key] {
				continue // a second signature of one digest is I2's
			}
			seen[key] = true
			site := useSite{r.ID, fmt.Sprintf("the workspace recorded it behind digest %d's signature", s.Index)}
			signed[s.PresignID] = append(signed[s.PresignID], site)
			name(s.PresignID, r.ID, site.where)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(named)) {
		if by := byRequest(named[p]); len(by) > 1 {
			requests := strings.Join(slices.Sorted(maps.Keys(by)), ", ")
			for r, where := range by {
				rep.add(I1, r, "presignature %s is tied to %d requests (%s): here, %s", p, len(by), requests, strings.Join(where, "; "))
			}
		}
	}
	for what, uses := range map[string]map[string][]useSite{"the cloud co-signers' ledger": ledger, "the workspace's signatures": signed} {
		for p, sites := range uses {
			if len(sites) > 1 {
				for r, where := range byRequest(sites) {
					rep.add(I1, r, "presignature %s is used %d times in %s: here, %s", p, len(sites), what, strings.Join(where, "; "))
				}
			}
		}
	}
}

// byRequest groups sites by request, so that each request concerned gets
// one violation that says every place it was seen.
func byRequest(sites []useSite) map[string][]string {
	by := map[string][]string{}
	for _, s := range sites {
		by[s.request] = append(by[s.request], s.where)
	}
	return by
}

// checkOwners judges I2 in the FSM: nodes may lag each other, so their
// views of a request may differ in attempt, but two views of one attempt
// must name one owner.
func checkOwners(rep *Report, nodes []Node) {
	type attempt struct {
		request string
		n       int
	}
	owners := map[attempt]map[string][]string{} // -> owner -> nodes that say so
	for _, n := range nodes {
		for _, r := range n.Requests {
			if r.Status != StatusClaimed {
				continue
			}
			a := attempt{r.ID, r.Attempt}
			if owners[a] == nil {
				owners[a] = map[string][]string{}
			}
			owners[a][r.Owner] = append(owners[a][r.Owner], n.ID)
		}
	}
	for a, by := range owners {
		if len(by) < 2 {
			continue
		}
		var views []string
		for _, o := range slices.Sorted(maps.Keys(by)) {
			views = append(views, fmt.Sprintf("%s by node(s) %s", o, strings.Join(by[o], ", ")))
		}
		rep.add(I2, a.request, "attempt %d is owned by %d nodes: %s", a.n, len(by), strings.Join(views, "; "))
	}
}

// checkDigests judges I2 in the workspace: one signature per digest.
func checkDigests(rep *Report, r Request) {
	count := map[uint32]int{}
	for _, s := range r.Signatures {
		count[s.Index]++
	}
	for _, i := range slices.Sorted(maps.Keys(count)) {
		if count[i] > 1 {
			rep.add(I2, r.ID, "digest %d has %d signatures", i, count[i])
		}
	}
}

// checkOutcome judges I3: the request ended, and ended complete.
func checkOutcome(rep *Report, r Request) {
	switch r.State {
	case StateSigned:
		signed := map[uint32]bool{}
		for _, s := range r.Signatures {
			if int(s.Index) < len(r.Digests) {
				signed[s.Index] = true
			}
		}
		if len(signed) < len(r.Digests) {
			rep.add(I3, r.ID, "signed with %d of %d digests", len(signed), len(r.Digests))
		}
	case StateApproved, StateRejected, StateIgnored:
	case StateFailed:
		if r.Reason == "" {
			rep.add(I3, r.ID, "failed without a reason")
		}
	case StateExpired:
		rep.add(I3, r.ID, "expired: the cluster never gave it an outcome")
	default:
		rep.add(I3, r.ID, "lost: still %s at the end of the run", cmp.Or(string(r.State), "in no state"))
	}
}

// checkSignatures re-verifies every signature under the key derived for
// its digest, with the workspace's verifier, as an outsider would.
func checkSignatures(rep *Report, r Request, keys map[string]SigningKey) {
	if len(r.Signatures) == 0 {
		return
	}
	key, ok := keys[r.UserID]
	if !ok {
		rep.add(InvSignature, r.ID, "no signing key for user %q to verify %d signatures", r.UserID, len(r.Signatures))
		return
	}
	wk := &protocol.WsSigningKey{PublicKey: key.PublicKey, ChainCode: key.ChainCode}
	for _, s := range r.Signatures {
		if int(s.Index) >= len(r.Digests) {
			rep.add(InvSignature, r.ID, "a signature for digest %d of %d", s.Index, len(r.Digests))
			continue
		}
		d := &protocol.WsDigestToSign{Digest: r.Digests[s.Index].Digest, DerivationPath: r.Digests[s.Index].Path}
		pub, err := verify.DerivedKey(wk, d)
		if err != nil {
			rep.add(InvSignature, r.ID, "digest %d: %v", s.Index, err)
			continue
		}
		if _, err := verify.SignatureUnder(pub, d, s.Sig); err != nil {
			rep.add(InvSignature, r.ID, "digest %d: %v", s.Index, err)
			continue
		}
		if len(s.PublicKey) > 0 && !bytes.Equal(s.PublicKey, pub) {
			rep.add(InvSignature, r.ID, "digest %d: the workspace recorded key %x, the derived key is %x", s.Index, s.PublicKey, pub)
		}
	}
}

// checkApprovals judges I5: every request that was signed or approved, or
// carries a signature or approval at all, had an APPROVE.
func checkApprovals(rep *Report, requests []Request, log *CallbackLog) {
	approved := map[string]bool{}
	for _, d := range log.Decisions {
		if d.Action == "APPROVE" {
			approved[d.RequestID] = true
		}
	}
	for _, r := range requests {
		acted := r.State == StateSigned || r.State == StateApproved || len(r.Signatures) > 0 || r.Approved
		if acted && !approved[r.ID] {
			rep.add(I5, r.ID, "%s with %d signatures and approval %t, but the callback handler never answered APPROVE", r.State, len(r.Signatures), r.Approved)
		}
	}
}
