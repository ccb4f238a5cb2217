package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/node"
)

// clusterCallTimeout bounds a cluster command's call to the node, leave
// excepted: a few proposals through raft.
const clusterCallTimeout = 2 * time.Minute

// maxPolicyFileBytes bounds a policy file.
const maxPolicyFileBytes = 1 << 20

func newNodeClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Operate the running node's cluster: join tokens, members, leadership, the attestation policy",
		Long: "cluster talks to the running node that --config names, through its admin API, with the admin token " +
			"in its data directory. Every command runs on that node and shows the cluster as that node sees it.",
	}
	cmd.AddCommand(newClusterJoinTokenCmd(), newClusterListCmd(), newClusterRemoveCmd(), newClusterLeaveCmd(),
		newClusterTransferLeaderCmd(), newClusterPolicyCmd(), newClusterCallbackCmd(),
		newClusterRotateKeyringCmd(), newClusterKeyringCmd())
	return cmd
}

// configFlag registers the --config flag every cluster command needs.
func configFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "config", "", "the node's YAML config file (required)")
	_ = cmd.MarkFlagRequired("config")
}

func newClusterJoinTokenCmd() *cobra.Command {
	var configPath string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "join-token --config FILE [--ttl 1h]",
		Short: "Mint a one-time join token that lets a new node join through this member",
		Long: "join-token records a one-time, expiring join token in the cluster and prints it, and only it, on " +
			"standard output, so that `> token` keeps it in a file. The token names this member's cluster address " +
			"and pins its identity key, so the joiner authenticates the cluster. It is a secret until it is used: " +
			"hand it over like a password. On the new node: coterie node join --config FILE --token-file token.",
		Example: "  coterie node cluster join-token --config node-1.yaml > token\n" +
			"  coterie node join --config node-2.yaml --token-file token",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			t, err := c.JoinToken(ctx, ttl)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(cmd.OutOrStdout(), t.Token); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "join token %s for cluster %s, through member %s at %s: one use, expires %s. "+
				"It is a secret: hand it over like a password.\n",
				t.TokenID, t.ClusterID, t.Member, t.MemberAddress, t.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
	configFlag(cmd, &configPath)
	cmd.Flags().DurationVar(&ttl, "ttl", cluster.DefaultJoinTokenTTL,
		fmt.Sprintf("how long the token stays valid, at most %v", cluster.MaxJoinTokenTTL))
	return cmd
}

func newClusterListCmd() *cobra.Command {
	var configPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --config FILE [--json]",
		Short: "List the cluster's members: role, liveness, address, location, enclave, load",
		Long: "list shows the members as the node sees them: each one's raft role (leader, voter, nonvoter, or not " +
			"in raft), liveness, addresses, location, enclave, the requests it owns, and when it joined. Only the " +
			"leader watches heartbeats, so run list on the leader to see which members are unreachable and since " +
			"when; a follower shows its own contact with the leader and \"unknown\" for the rest.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			v, err := c.Members(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), v)
			}
			return printMembers(cmd.OutOrStdout(), v, time.Now())
		},
	}
	configFlag(cmd, &configPath)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printMembers prints a cluster view as a table; now dates the liveness.
func printMembers(w io.Writer, v node.ClusterView, now time.Time) error {
	leader := v.LeaderID
	if leader == "" {
		leader = "none known"
	}
	view := "it leads and watches every member's heartbeats; the others' APPLIED is their own last report to it"
	if !v.LivenessKnown {
		view = "it follows and sees no heartbeats but the leader's: run list on the leader for the others' liveness and progress"
	}
	fmt.Fprintf(w, "cluster %s as %s sees it (leader: %s; %s)\n\n", v.ClusterID, v.ViewOf, leader, view)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tLIVENESS\tAPPLIED\tADDRESS\tLOCATION\tENCLAVE\tREQUESTS\tJOINED")
	for _, m := range v.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Role, liveness(m, now), applied(m, now), m.Address,
			dash(m.Location), dash(m.Enclave.Kind), memberLoad(m.Load), joined(m))
	}
	return tw.Flush()
}

// liveness describes a member's liveness for people: how long an
// unreachable member has been so.
func liveness(m node.MemberView, now time.Time) string {
	switch {
	case m.Liveness == node.LivenessUnreachable && m.UnreachableSince != nil:
		return fmt.Sprintf("UNREACHABLE for %s (since %s)", now.Sub(*m.UnreachableSince).Round(time.Second), m.UnreachableSince.Format(time.RFC3339))
	case m.LastContact != nil:
		return fmt.Sprintf("%s (contact %s ago)", m.Liveness, now.Sub(*m.LastContact).Round(time.Millisecond))
	}
	return m.Liveness
}

// applied gives a member's applied raft index: this node's own, or one
// the member reported to the leader, with the report's age.
func applied(m node.MemberView, now time.Time) string {
	switch {
	case m.Raft != nil:
		return fmt.Sprint(m.Raft.AppliedIndex)
	case m.Reported != nil:
		return fmt.Sprintf("%d (reported %s ago)", m.Reported.AppliedIndex, now.Sub(m.Reported.At).Round(time.Millisecond))
	}
	return "-"
}

func memberLoad(l node.MemberLoad) string {
	if l.Sessions != nil && l.Capacity != nil {
		return fmt.Sprintf("%d (%d/%d sessions)", l.RequestsOwned, *l.Sessions, *l.Capacity)
	}
	return fmt.Sprint(l.RequestsOwned)
}

func joined(m node.MemberView) string {
	switch {
	case !m.InMemberTable:
		return "not in the member table"
	case m.JoinedAt == nil:
		return "-"
	case m.JoinedWith == "":
		return m.JoinedAt.Format(time.RFC3339) + " (bootstrapped)"
	}
	return m.JoinedAt.Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newClusterRemoveCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "remove NODE --config FILE",
		Short: "Remove another node from the cluster: from raft and the member table",
		Long: "remove takes NODE out of raft's configuration and the member table, so that it can no longer " +
			"connect; the requests it still owned go to the others after owner_timeout. It is for a node lost for " +
			"good: a node that is still running leaves with `coterie node cluster leave` on it, which drains it " +
			"first. remove refuses the last voter, and a node whose removal would leave the other voters without " +
			"a quorum (the cluster would stop), and says why.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			if err := c.RemoveMember(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s from the cluster\n", args[0])
			return nil
		},
	}
	configFlag(cmd, &configPath)
	return cmd
}

func newClusterLeaveCmd() *cobra.Command {
	var configPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "leave --config FILE [--json]",
		Short: "Drain the running node and take it out of the cluster for good; it then stops",
		Long: "leave is a planned departure for good: the node hands raft leadership to another voter if it leads, " +
			"stops claiming, lets the requests in flight finish within shutdown_grace, hands the rest back to the " +
			"other nodes, removes itself from raft and the member table, and its `node run` exits. It refuses, " +
			"before draining anything, when the node is the last voter or its departure would leave the others " +
			"without a quorum. A node that left cannot start again: to bring the machine back, join it anew with " +
			"a fresh data directory. For a restart, stop the node with SIGTERM instead, which drains it and keeps " +
			"it a member.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := node.LoadConfig(configPath)
			if err != nil {
				return err
			}
			c, err := node.NewAdminClient(cfg)
			if err != nil {
				return err
			}
			var rep node.DrainReport
			err = spin(cmd.ErrOrStderr(), fmt.Sprintf("node %s leaving: draining for up to %s", cfg.NodeID, cfg.ShutdownGrace), func() (err error) {
				rep, err = c.Leave(cmd.Context())
				return err
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, rep)
			}
			fmt.Fprintf(out, "node %s left the cluster; %d unfinished requests handed back\n", rep.NodeID, len(rep.HandedBack))
			if rep.TransferredTo != "" {
				fmt.Fprintf(out, "leadership handed to %s\n", rep.TransferredTo)
			}
			return nil
		},
	}
	configFlag(cmd, &configPath)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the departure's report as JSON")
	return cmd
}

func newClusterTransferLeaderCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "transfer-leader --config FILE",
		Short: "Hand raft leadership from the node, which must lead, to another voter",
		Long: "transfer-leader makes the node, which must be the leader, hand leadership to another voter at once " +
			"(a few milliseconds), for example before maintenance. Run it against the leader: `node cluster list` " +
			"names it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			r, err := c.TransferLeadership(ctx)
			if err != nil {
				return err
			}
			to := r.Leader
			if to == "" {
				to = "another voter (not known yet)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "leadership handed from %s to %s\n", r.Previous, to)
			return nil
		},
	}
	configFlag(cmd, &configPath)
	return cmd
}

func newClusterPolicyCmd() *cobra.Command {
	var configPath, setPath string
	cmd := &cobra.Command{
		Use:   "policy --config FILE [--set FILE.yaml]",
		Short: "Show or replace the cluster's attestation policy: the enclave identities allowed to join",
		Long: "policy prints the cluster's attestation policy as a YAML list of rules, in the format of the node " +
			"config's cluster.policy. --set replaces it with the rules in FILE.yaml (- for standard input), in the " +
			"same format, so that `policy > p.yaml`, an edit and `policy --set p.yaml` change it. The policy decides " +
			"who may join from then on; members already in stay.",
		Example: "  coterie node cluster policy --config node.yaml > policy.yaml\n" +
			"  coterie node cluster policy --config node.yaml --set policy.yaml",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rules []node.PolicyRule
			if setPath != "" {
				var err error
				if rules, err = readPolicyFile(cmd, setPath); err != nil {
					return err
				}
			}
			ctx, c, cancel, err := nodeCall(cmd, configPath, clusterCallTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			if setPath != "" {
				rules, err = c.SetPolicy(ctx, rules)
				if err == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "attestation policy set: %d rules; it decides who may join from now on\n", len(rules))
				}
			} else {
				rules, err = c.Policy(ctx)
			}
			if err != nil {
				return err
			}
			enc := yaml.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent(2)
			if err := enc.Encode(rules); err != nil {
				return err
			}
			return enc.Close()
		},
	}
	configFlag(cmd, &configPath)
	cmd.Flags().StringVar(&setPath, "set", "", "replace the policy with the YAML list of rules in this file (- for standard input)")
	return cmd
}

// readPolicyFile reads a YAML list of policy rules, in the node config's
// cluster.policy format; an unknown field is an error. The node checks
// the rules themselves.
func readPolicyFile(cmd *cobra.Command, path string) ([]node.PolicyRule, error) {
	r, name := cmd.InOrStdin(), "standard input"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--set: %w", err)
		}
		defer f.Close()
		r, name = f, path
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPolicyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--set: read %s: %w", name, err)
	}
	if len(b) > maxPolicyFileBytes {
		return nil, fmt.Errorf("--set: %s is larger than %d bytes", name, maxPolicyFileBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var rules []node.PolicyRule
	if err := dec.Decode(&rules); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("--set: %s holds no rules", name)
		}
		return nil, fmt.Errorf("--set: %s is not a YAML list of rules (kind, measurement, signer, product, min_security_version, allow_debug): %w", name, err)
	}
	return rules, nil
}

// joinTimeout bounds `node join`: the handshake and both attestations.
const joinTimeout = 2 * time.Minute

func newNodeJoinCmd() *cobra.Command {
	var configPath, tokFile string
	cmd := &cobra.Command{
		Use:   "join --config FILE --token-file -|PATH",
		Short: "Join a new node to a cluster with a join token, then exit",
		Long: "join creates the node's sealed store on first use and runs the join handshake with the member the " +
			"token names: both sides attest their enclaves, the member checks the token and the cluster's " +
			"attestation policy and records the node in the member table, and the node seals the cluster keyring " +
			"it receives. Then start the node with `coterie node run --config FILE`: it catches up with the " +
			"leader, becomes a voter and serves. A failed join leaves nothing behind and can be run again.\n\n" +
			"The token is a secret: give it on standard input (--token-file -) or in a file (--token-file PATH). " +
			"A node configured with cluster.join_token_file joins the same way on its first `node run`.",
		Example: "  coterie node cluster join-token --config node-1.yaml | ssh node-2 coterie node join --config node-2.yaml --token-file -",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, err := readSecret(cmd, tokFile, "join token")
			if err != nil {
				return err
			}
			cfg, err := node.LoadConfig(configPath)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), joinTimeout)
			defer cancel()
			res, err := node.Join(ctx, cfg, token)
			if err != nil {
				return err
			}
			var ids []string
			for _, m := range res.Members {
				ids = append(ids, m.ID)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s joined cluster %s (members: %s), admitted by a %s member\n",
				cfg.NodeID, res.ClusterID, strings.Join(ids, ", "), res.Member.Kind)
			fmt.Fprintf(cmd.OutOrStdout(), "start it with: coterie node run --config %s\n", configPath)
			return nil
		},
	}
	configFlag(cmd, &configPath)
	cmd.Flags().StringVar(&tokFile, "token-file", "", "read the join token from this file, or from standard input for - (required)")
	_ = cmd.MarkFlagRequired("token-file")
	return cmd
}
