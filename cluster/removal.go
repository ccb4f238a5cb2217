package cluster

import (
	"context"

	"github.com/coterie-mpc/coterie/protocol"
)

// CheckRemoval asks the leader whether it would remove server id now (the
// rule of RemoveMember, by the leader's view of which voters are
// reachable), and changes nothing. It returns nil when it would, an error
// wrapping ErrMember when it would not, and ErrNotLeader when no leader
// answers before ctx ends. A node about to leave asks first, so that a
// refusal comes before it drains.
func (c *Cluster) CheckRemoval(ctx context.Context, id string) error {
	return c.membership(ctx, &protocol.ClusterForwardRequest{Body: &protocol.ClusterForwardRequest_RemovalCheck{
		RemovalCheck: &protocol.ClusterRemovalCheck{Id: id},
	}})
}

// removalRefusal says why the leader will not remove server id now, or
// nil, by removalRule and the leader's heartbeats. Only the leader can
// tell: a follower watches no heartbeats, so the check runs where the
// removal does, in handle.
func (c *Cluster) removalRefusal(id string) error {
	if err := checkID("server", id); err != nil {
		return err
	}
	servers, err := c.Servers()
	if err != nil {
		return err
	}
	return removalRule(servers, id, c.cfg.NodeID, c.Reachable)
}

// removalRule says why server id may not leave the configuration servers,
// or nil: it is the last voter, or the other voters that reachable (the
// view of leader) reports up would not make a quorum of the voters left.
// Removing a non-voter, or a server not in the configuration, never stops
// the cluster.
func removalRule(servers []Server, id, leader string, reachable func(id string) bool) error {
	var voter bool
	var voters, up int
	for _, s := range servers {
		switch {
		case s.ID == id:
			voter = s.Voter
		case s.Voter:
			voters++
			if reachable(s.ID) {
				up++
			}
		}
	}
	switch {
	case !voter:
		return nil
	case voters == 0:
		return errorf(ErrMember, "%q is the last voter; a cluster cannot remove its last node", id)
	case up < voters/2+1:
		return errorf(ErrMember, "without %q, %d of the other %d voters are reachable from the leader %s, short of a quorum of %d; bring nodes back first",
			id, up, voters, leader, voters/2+1)
	}
	return nil
}
