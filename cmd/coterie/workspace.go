package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace"
	"github.com/coterie-mpc/coterie/workspace/client"
	"github.com/coterie-mpc/coterie/workspace/request"
	"github.com/coterie-mpc/coterie/workspace/store"
	"github.com/coterie-mpc/coterie/workspace/token"
)

func newWorkspaceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workspace",
		Short: "Run the custody-platform simulator and act as its operator",
		Long: "workspace runs the custody-platform simulator that Coterie nodes pair with: API users, " +
			"pairing tokens, the request queue, the cloud co-signers and the judge that verifies every " +
			"signature and approval. Every client command finds the server through --data-dir, the " +
			"served workspace's directory, which holds the address, the CA and the admin credential.",
	}
	cmd.PersistentFlags().String("data-dir", "", "the workspace's data directory (required)")
	_ = cmd.MarkPersistentFlagRequired("data-dir")
	cmd.AddCommand(newWorkspaceServeCmd(), newWorkspaceCreateUserCmd(), newWorkspaceIssueTokenCmd(),
		newWorkspaceUsersCmd(), newWorkspaceSubmitCmd(), newWorkspaceRequestsCmd(), newWorkspaceVerifyCmd(),
		newWorkspaceStatsCmd(), newWorkspaceAuditCmd())
	return cmd
}

func wsDataDir(cmd *cobra.Command) string {
	d, _ := cmd.Flags().GetString("data-dir")
	return d
}

// wsAdmin dials the workspace served from --data-dir.
func wsAdmin(cmd *cobra.Command) (*client.Admin, error) {
	return client.DialAdmin(wsDataDir(cmd))
}

// wsErr makes a gRPC error readable on a terminal.
func wsErr(cmd *cobra.Command, a *client.Admin, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if st.Code() == codes.Unavailable {
		return fmt.Errorf("workspace at %s is not reachable (is `coterie workspace serve --data-dir %s` running?): %s",
			a.Address, wsDataDir(cmd), st.Message())
	}
	return fmt.Errorf("%s: %s", st.Code(), st.Message())
}

// wsTimeout bounds one admin call.
const wsTimeout = 30 * time.Second

func wsCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), wsTimeout)
}

// withAdmin runs call with the workspace's admin client and a context that
// ends after timeout, and makes the gRPC error it returns readable.
func withAdmin(cmd *cobra.Command, timeout time.Duration, call func(context.Context, *client.Admin) error) error {
	a, err := wsAdmin(cmd)
	if err != nil {
		return err
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	return wsErr(cmd, a, call(ctx, a))
}

// ---------------------------------------------------------------- serve

func newWorkspaceServeCmd() *cobra.Command {
	cfg := workspace.DefaultConfig()
	var logLevel string
	cmd := &cobra.Command{
		Use:   "serve --data-dir DIR [--listen ADDR]",
		Short: "Serve a workspace (created on first start) until SIGINT or SIGTERM",
		Long: "serve creates the workspace in --data-dir on first start (its CA, admin credential, cloud " +
			"co-signers, a unique workspace ID and vault accounts 0, 1 and 2) and serves its gRPC API " +
			"over TLS. The MPC setup (--cloud-cosigners, --quorum) is fixed at the first start: later " +
			"starts use the stored one, and refuse flags that contradict it. The cloud co-signers' " +
			"secrets are sealed with the simulated enclave: for development only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("workspace serve: --log-level: %w", err)
			}
			cfg.DataDir = wsDataDir(cmd)
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			ws, err := workspace.Open(cfg)
			if err != nil {
				return fmt.Errorf("workspace serve: %w", err)
			}
			ws.Start()
			setup := ws.Setup()
			fmt.Fprintf(cmd.OutOrStdout(), "workspace serving at %s (data dir %s)\nworkspace %s: cloud co-signers %d, quorum %d\n",
				ws.Addr(), cfg.DataDir, setup.GetWorkspaceId(), setup.GetCloudCosigners(), setup.GetQuorum())
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sig)
			select {
			case <-sig:
			case err := <-wsWait(ws):
				ws.Close()
				return fmt.Errorf("workspace serve: %w", err)
			}
			return ws.Close()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.Listen, "listen", cfg.Listen, "the gRPC listen address, host:port")
	fl.StringVar(&cfg.Advertise, "advertise", "", "the host:port that pairing tokens carry (default: the listen address)")
	fl.IntVar(&cfg.CloudCosigners, "cloud-cosigners", 0, "the number of cloud co-signers, 1 or 2 (default: the stored setup; 2 on the first start)")
	fl.IntVar(&cfg.Quorum, "quorum", 0, "how many parties sign, the co-signer node included (default: the stored setup; all parties on the first start)")
	fl.DurationVar(&cfg.RequestTTL, "request-ttl", cfg.RequestTTL, "how long a request stays open by default")
	fl.DurationVar(&cfg.TokenTTL, "token-ttl", cfg.TokenTTL, "how long a pairing token is valid by default")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func wsWait(ws *workspace.Workspace) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- ws.Wait() }()
	return ch
}

// ---------------------------------------------------------------- users

func newWorkspaceCreateUserCmd() *cobra.Command {
	var role, name, wsID string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create-user --data-dir DIR --role signer|approver|both [--name NAME]",
		Short: "Create an API user and print its pairing token",
		Long: "create-user creates an API user and prints its one-time pairing token on stdout (the " +
			"user's ID goes to stderr). Give it to the co-signer on standard input, out of the process list: " +
			"`coterie workspace create-user ... | coterie node pair --config FILE --token-file -`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := store.ParseRole(role)
			if err != nil {
				return err
			}
			return withAdmin(cmd, wsTimeout, func(ctx context.Context, a *client.Admin) error {
				resp, err := a.CreateUser(ctx, &protocol.WsCreateUserRequest{WorkspaceId: wsID, Name: name, Role: r, TokenTtlSeconds: uint32(ttl / time.Second)})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "created %s user %s; pairing token valid until %s:\n", role, resp.User.Id, wsTokenExpiry(resp.PairingToken))
				fmt.Fprintln(cmd.OutOrStdout(), resp.PairingToken)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&role, "role", "", "signer, approver or both (required)")
	fl.StringVar(&name, "name", "", "a name for the user")
	fl.StringVar(&wsID, "workspace", "", "the workspace ID (default: the served workspace's)")
	fl.DurationVar(&ttl, "token-ttl", 0, "how long the token is valid (default: the server's)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

// wsTokenExpiry reads a token's expiry for the operator.
func wsTokenExpiry(tok string) string {
	t, err := token.Parse(tok)
	if err != nil {
		return "its expiry"
	}
	return wsTime(t.Fields.GetExpiresAt())
}

func newWorkspaceIssueTokenCmd() *cobra.Command {
	var user string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "issue-token --data-dir DIR --user U",
		Short: "Issue a new pairing token for a user that is not paired yet",
		Long:  "issue-token replaces the user's outstanding pairing token (for example an expired one) and prints the new one.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, wsTimeout, func(ctx context.Context, a *client.Admin) error {
				resp, err := a.IssueToken(ctx, &protocol.WsIssueTokenRequest{UserId: user, TokenTtlSeconds: uint32(ttl / time.Second)})
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), resp.PairingToken)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user ID (required)")
	cmd.Flags().DurationVar(&ttl, "token-ttl", 0, "how long the token is valid (default: the server's)")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}

func newWorkspaceUsersCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "users --data-dir DIR [--json]",
		Short: "List the API users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, wsTimeout, func(ctx context.Context, a *client.Admin) error {
				resp, err := a.ListUsers(ctx, &protocol.WsListUsersRequest{})
				if err != nil {
					return err
				}
				if asJSON {
					return wsPrintJSON(cmd.OutOrStdout(), resp.Users)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tROLE\tSTATE\tNAME\tPUBLIC KEY\tLAST SEEN")
				for _, u := range resp.Users {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%x\t%s\n", u.Id, store.RoleName(u.Role), store.StateName(u.State), u.Name,
						u.GetSigningKey().GetPublicKey(), wsTime(u.LastSeenAt))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// ---------------------------------------------------------------- requests

func newWorkspaceRequestsCmd() *cobra.Command {
	var stateName, user string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "requests --data-dir DIR [--state S] [--user U] [--json]",
		Short: "List requests, oldest first",
		Long: "requests lists every request, or those in one state (pending, delivered, claimed, signed, " +
			"approved, rejected, failed, expired, ignored) or of one user. Under each signed digest it shows " +
			"the recovery ID v (Ethereum's v is 27+v, or chain_id*2+35+v with EIP-155), the derived public " +
			"key and the signature r||s, in hex; --json has them as recovery_id, public_key and signature " +
			"(base64). A config change that the co-signer's callback handler answered IGNORE shows as " +
			"\"ignored by this co-signer\": it waits for the workspace's other approvers.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var state protocol.WsRequestState
			if stateName != "" {
				var err error
				if state, err = store.ParseRequestState(stateName); err != nil {
					return err
				}
			}
			return withAdmin(cmd, wsTimeout, func(ctx context.Context, a *client.Admin) error {
				var all []*protocol.WsRequest
				var after uint64
				for page := 0; page < 1<<20; page++ { // bounded: a million pages of 1000
					resp, err := a.ListRequests(ctx, &protocol.WsListRequestsRequest{State: state, UserId: user, AfterSeq: after})
					if err != nil {
						return err
					}
					all = append(all, resp.Requests...)
					if after = resp.NextAfterSeq; after == 0 {
						break
					}
				}
				if asJSON {
					return wsPrintJSON(cmd.OutOrStdout(), all)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tUSER\tSTATE\tWHAT\tCREATED\tREASON")
				for _, r := range all {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Id, r.UserId, store.RequestStateName(r.State), wsDescribe(r), wsTime(r.CreatedAt), r.Reason)
					for _, sig := range r.Signatures {
						// One untabbed cell after the ID column: it does not widen the columns.
						fmt.Fprintf(tw, "\t%s\n", wsSignatureLine(r, sig))
					}
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%d requests\n", len(all))
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&stateName, "state", "", "only requests in this state")
	fl.StringVar(&user, "user", "", "only this user's requests")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func wsDescribe(r *protocol.WsRequest) string {
	if tx := r.GetTransaction(); tx != nil {
		to := ""
		if d := tx.GetDestinations(); len(d) > 0 {
			to = d[0].GetPeer().GetAddress()
			if to == "" {
				to = d[0].GetPeer().GetType() + " " + d[0].GetPeer().GetId()
			}
		}
		return fmt.Sprintf("%s %s -> %s", tx.Amount, tx.Asset, to)
	}
	return request.TypeName(r.GetConfigChange().GetType())
}

// wsSignatureLine describes a recorded signature: its digest and path, the
// recovery ID, the derived public key and r||s. A signature recorded before
// the workspace kept the recovery ID shows "-" for it and the key.
func wsSignatureLine(r *protocol.WsRequest, sig *protocol.WsDigestSignature) string {
	path := "?"
	if ds := r.GetTransaction().GetDigests(); int(sig.GetIndex()) < len(ds) {
		path = mpc.Path(ds[sig.GetIndex()].GetDerivationPath()).String()
	}
	v, pub := "-", "-"
	if sig.RecoveryId != nil {
		v = fmt.Sprint(sig.GetRecoveryId())
	}
	if len(sig.GetPublicKey()) > 0 {
		pub = hex.EncodeToString(sig.GetPublicKey())
	}
	return fmt.Sprintf("digest %d %s: v %s, public key %s, signature %x", sig.GetIndex(), path, v, pub, sig.GetSignature())
}

func wsTime(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339)
}

// wsPrintJSON prints protobuf messages as a JSON array, one object per
// line (see plainJSON).
func wsPrintJSON[M proto.Message](w io.Writer, msgs []M) error {
	var b strings.Builder
	b.WriteString("[")
	for i, m := range msgs {
		if i > 0 {
			b.WriteString(",")
		}
		j, err := json.Marshal(plainJSON(m.ProtoReflect(), false))
		if err != nil {
			return err
		}
		b.WriteString("\n")
		b.Write(j)
	}
	b.WriteString("\n]\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// ---------------------------------------------------------------- verify, stats, audit

func newWorkspaceVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify --data-dir DIR",
		Short: "Re-verify every stored signature and approval; exit non-zero if any is invalid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, 10*time.Minute, func(ctx context.Context, a *client.Admin) error {
				v, err := a.Verify(ctx, &protocol.WsVerifyRequest{})
				if err != nil {
					return err
				}
				for _, p := range v.Problems {
					fmt.Fprintf(cmd.OutOrStdout(), "INVALID %s digest %d: %s\n", p.RequestId, p.DigestIndex, p.Problem)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d requests, %d signatures and %d approvals checked, %d invalid\n",
					v.Requests, v.SignaturesChecked, v.ApprovalsChecked, len(v.Problems))
				if len(v.Problems) > 0 {
					return errors.New("workspace verify: invalid signatures or approvals found")
				}
				return nil
			})
		},
	}
}

func newWorkspaceStatsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stats --data-dir DIR",
		Short: "Print counts of requests by state, users, presignatures and duplicates, as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, wsTimeout, func(ctx context.Context, a *client.Admin) error {
				s, err := a.Stats(ctx, &protocol.WsStatsRequest{})
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), plainJSON(s.ProtoReflect(), true))
			})
		},
	}
}

func newWorkspaceAuditCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "audit --data-dir DIR",
		Short: "Print the audit log",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, wsTimeout, func(ctx context.Context, a *client.Admin) error {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tUSER\tREQUEST\tDETAIL")
				var after uint64
				for page := 0; page < 1<<20; page++ { // bounded
					resp, err := a.ListAudit(ctx, &protocol.WsListAuditRequest{AfterSeq: after})
					if err != nil {
						return err
					}
					for _, e := range resp.Entries {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, wsTime(e.At), e.Actor, e.Action, e.UserId, e.RequestId, e.Detail)
					}
					if after = resp.NextAfterSeq; after == 0 {
						break
					}
				}
				return tw.Flush()
			})
		},
	}
}
