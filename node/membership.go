package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave"
)

// joinTimeout bounds a join handshake, the member's attestation included.
const joinTimeout = 2 * time.Minute

// ErrJoined is returned by Join for a node that has joined a cluster or
// has raft state already: it is a member; it starts with `node run`.
var ErrJoined = errors.New("node: this node has joined a cluster already")

// knownMembers returns the member table the node saw last (from its join,
// or from its replica before it stopped), or false for a node that has
// none yet.
func (n *Node) knownMembers() (cluster.KnownMembers, bool, error) {
	b, ok, err := n.store.Members(n.enclave)
	if err != nil || !ok {
		return cluster.KnownMembers{}, false, err
	}
	k, err := cluster.DecodeKnownMembers(b)
	return k, err == nil, err
}

// saveMembers keeps the member table the replica applied, sealed.
func (n *Node) saveMembers(k cluster.KnownMembers) error {
	b, err := k.Encode()
	if err != nil {
		return err
	}
	if err := n.store.SaveMembers(n.enclave, b); err != nil {
		return err
	}
	n.storeChanged()
	return nil
}

// joinedElsewhere reports whether the node joined a cluster another node
// bootstrapped: it never bootstraps one of its own.
func joinedElsewhere(k cluster.KnownMembers, self string) bool {
	for _, m := range k.Members {
		if m.ID == self {
			return m.JoinedWith != ""
		}
	}
	return len(k.Members) > 0
}

// selfMember describes this node for the member table.
func (n *Node) selfMember() cluster.Member {
	return cluster.Member{ID: n.cfg.NodeID, Address: n.cluster.Addr(), IdentityKey: n.identity,
		Enclave: n.enclave.Self(), Location: n.cfg.Cluster.Location}
}

// clusterPolicy is the configured attestation policy or, when none is
// configured, one that admits this node's own enclave kind and code.
func (n *Node) clusterPolicy() enclave.Policy {
	p, _ := n.cfg.Cluster.policy() // Validate checked it
	if len(p.Allow) > 0 {
		return p
	}
	self := n.enclave.Self()
	return enclave.Policy{Allow: []enclave.Rule{{Kind: self.Kind, Measurement: self.Measurement, AllowDebug: self.Debug}}}
}

// joinIfAsked joins the cluster that cluster.join_token_file names, on the
// node's first start: when the node has no raft state and has not joined.
func (n *Node) joinIfAsked() error {
	if n.cfg.Cluster.JoinTokenFile == "" {
		return nil
	}
	if done, err := n.hasJoined(); err != nil || done {
		return err
	}
	token, err := readJoinToken(n.cfg.Cluster.JoinTokenFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	_, err = n.join(ctx, token)
	return err
}

// hasJoined reports whether the node is a member already: it joined, or
// it has raft state (it bootstrapped, or it joined before join records).
func (n *Node) hasJoined() (bool, error) {
	if k, ok, err := n.knownMembers(); err != nil || (ok && joinedElsewhere(k, n.cfg.NodeID)) {
		return ok, err
	}
	_, err := os.Stat(filepath.Join(n.cfg.DataDir, "raft"))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// join runs the join handshake with the member the token names and, on
// success, seals the cluster's keyring and the member table it was given
// in the node store, in one transaction. A join that fails changes
// nothing here and may be run again.
func (n *Node) join(ctx context.Context, token string) (cluster.JoinResult, error) {
	addr := n.cfg.Raft.Advertise
	if addr == "" {
		addr = n.cfg.Raft.Bind
	}
	res, err := cluster.Join(ctx, cluster.JoinParams{
		Token: token, NodeID: n.cfg.NodeID, Address: addr, Location: n.cfg.Cluster.Location,
		Identity: n.identityKey, Attester: n.enclave, Policy: n.clusterPolicy(), Now: n.clock.Now,
		Network: n.cfg.Network.net(), UnverifiableKinds: n.cfg.Cluster.unverifiableKinds(),
	})
	if err != nil {
		return cluster.JoinResult{}, err
	}
	rec, err := res.Known().Encode()
	if err != nil {
		return cluster.JoinResult{}, err
	}
	if err := n.store.SaveJoin(n.enclave, res.Keyring, rec); err != nil {
		return cluster.JoinResult{}, err
	}
	n.kr = res.Keyring
	n.log.Info("joined the cluster", "cluster", res.ClusterID, "members", len(res.Members), "member_enclave", res.Member.String())
	if len(res.Member.Measurement) == 0 {
		n.log.Warn("joined through a member whose evidence this build cannot check (cluster.unverifiable_join_kinds): "+
			"the join token's pin was all this node checked", "member_kind", res.Member.Kind)
	}
	return res, nil
}

// readJoinToken reads a join token from a file, or standard input for "-".
func readJoinToken(path string) (string, error) {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return "", fmt.Errorf("node: join token: %w", err)
		}
		defer f.Close()
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("node: join token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%w: the join token file %s is empty", ErrInvalidConfig, path)
	}
	return t, nil
}

// joinCluster brings a started node into its cluster: the bootstrapping
// node initializes the member table; every node catches up with the
// leader; a node that joined as a non-voter then asks to be a voter.
func (n *Node) joinCluster(ctx context.Context) error {
	if err := n.cluster.WaitCaughtUp(ctx); err != nil {
		return fmt.Errorf("node: catching up with the leader: %w", err)
	}
	if n.cluster.ClusterID() == "" {
		if !n.cfg.Raft.Bootstrap || !n.cluster.IsLeader() {
			return fmt.Errorf("node: the cluster has no member table and this node did not bootstrap it")
		}
		if err := n.cluster.Init(ctx, n.clusterPolicy(), n.selfMember()); err != nil {
			return fmt.Errorf("node: initialize the member table: %w", err)
		}
		n.log.Info("member table initialized", "cluster", n.cluster.ClusterID())
	}
	if _, ok := n.cluster.FSM().MemberByID(n.cfg.NodeID); !ok {
		return fmt.Errorf("node: %s is not in the member table of cluster %s (removed?)", n.cfg.NodeID, n.cluster.ClusterID())
	}
	voter, err := n.cluster.IsVoter(n.cfg.NodeID)
	if err != nil {
		return err
	}
	switch {
	case voter && n.cfg.Raft.NonVoter:
		// Its raft state does not outlive it (storage.parent or bucket):
		// as a voter it would forget its votes and acknowledged entries.
		return fmt.Errorf("%w: raft.nonvoter is set, but raft has %s as a voter, which must keep its raft state: "+
			"remove it (`coterie node cluster remove %s` on another member) and join it again", ErrInvalidConfig, n.cfg.NodeID, n.cfg.NodeID)
	case !voter && n.cfg.Raft.NonVoter:
		n.log.Info("a non-voter, as raft.nonvoter says")
	case !voter:
		if err := n.cluster.AddVoter(ctx, n.cfg.NodeID, n.selfMember().Address); err != nil {
			return fmt.Errorf("node: becoming a voter: %w", err)
		}
		n.log.Info("promoted to voter")
	}
	return nil
}
