package main

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/node"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// demoNodes is the size of the demo's cluster.
const demoNodes = 3

type demoFlags struct {
	requests int
	keep     bool
	dir      string
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo [--requests N] [--keep]",
		Short: "Run a three-node cluster, a workspace and a callback handler on loopback, sign, and kill a node",
		Long: "demo runs, on loopback ports, a cluster of three Coterie nodes as separate `coterie node run` " +
			"processes of this binary (the first bootstraps the cluster, the others join it with join tokens " +
			"minted on it), and in this process a workspace simulator with one cloud co-signer (2-of-2 CMP, " +
			"for speed: a presignature costs about 2 s of CPU instead of 4 s) and the reference callback handler " +
			"with a demo policy (per-asset maximum amounts, a destination allowlist, config-change types allowed " +
			"but ADD_USER, one RETRY rule). It pairs the cluster with an API user through the first node, submits " +
			"N transactions (some break the policy, the first is answered RETRY once) and one config change of " +
			"each of the eight types. Once the cluster owns them and has finished one it kills, with SIGKILL, the " +
			"node that owns the most unfinished requests (a follower among equals, the leader if it owns the " +
			"most), shows the other nodes taking them over " +
			"and finishing them, and measures the failover: from the kill to each request's takeover, as the " +
			"surviving nodes report it. Then it restarts the node and shows " +
			"it catch up. It asks the workspace to verify every signature and approval and checks that no " +
			"presignature signed twice, prints a summary and, last, a JSON line; it exits 0 only if every request " +
			"ended as the policy says, everything verified, and the killed node's requests were taken over and " +
			"the node caught up. Each node logs to nN.log in the demo's directory, the rest to demo.log.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd, f) },
	}
	cmd.Flags().IntVar(&f.requests, "requests", 10, "how many transactions to submit (1 to 200)")
	cmd.Flags().BoolVar(&f.keep, "keep", false, "leave everything running after the summary, until Ctrl-C")
	cmd.Flags().StringVar(&f.dir, "dir", "", "the directory to run in (default: a new temporary directory)")
	return cmd
}

// demoEnv is everything the demo runs.
type demoEnv struct {
	dir     string
	log     *slog.Logger
	logFile *os.File
	ws      *workspace.Workspace
	wsDir   string
	admin   *client.Admin
	cluster *demoCluster
	cbSrv   *http.Server
	cbAddr  string
	userID  string
}

// close stops everything the demo started: the node processes first,
// while the workspace they talk to still serves.
func (e *demoEnv) close() {
	if e.cluster != nil {
		e.cluster.close()
		e.cluster = nil
	}
	if e.cbSrv != nil {
		_ = e.cbSrv.Close()
		e.cbSrv = nil
	}
	if e.admin != nil {
		_ = e.admin.Close()
		e.admin = nil
	}
	if e.ws != nil {
		_ = e.ws.Close()
		e.ws = nil
	}
	if e.logFile != nil {
		_ = e.logFile.Close()
		e.logFile = nil
	}
}

// demoResult is the demo's last line.
type demoResult struct {
	Submitted int    `json:"submitted"`
	Signed    int    `json:"signed"`
	Approved  int    `json:"approved"`
	Rejected  int    `json:"rejected"`
	Failed    int    `json:"failed"`
	Verified  int    `json:"verified"`
	Nodes     int    `json:"nodes"`
	Killed    string `json:"killed"`
	// FailedOver counts the killed node's unfinished requests that other
	// nodes took over; FailoverMS is the longest wait, from the kill to a
	// takeover, and FailoverP50MS the median. Both are null when the
	// killed node had nothing to take over.
	FailedOver    int    `json:"failed_over"`
	FailoverMS    *int64 `json:"failover_ms"`
	FailoverP50MS *int64 `json:"failover_p50_ms"`
}

func runDemo(cmd *cobra.Command, f demoFlags) (err error) {
	if f.requests < 1 || f.requests > 200 {
		return errors.New("demo: --requests must be 1 to 200")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: the binary to run the nodes with: %w", err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &demoEnv{dir: f.dir}
	// summarized is set once the watch is over: a Ctrl-C before that
	// interrupts the demo, and after it ends --keep. Deferred before the
	// cleanup, this runs after it.
	summarized := false
	defer func() {
		if err != nil && !summarized && ctx.Err() != nil && cmd.Context().Err() == nil {
			err = fmt.Errorf("demo: interrupted; every process it started has stopped (its directory %s is left as it was)", env.dir)
		}
	}()
	out, progress := cmd.OutOrStdout(), cmd.ErrOrStderr()
	start := time.Now()

	if env.dir == "" {
		if env.dir, err = os.MkdirTemp("", "coterie-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(env.dir, 0o700); err != nil {
		return err
	}
	defer env.close()
	if env.logFile, err = os.OpenFile(filepath.Join(env.dir, "demo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return err
	}
	env.log = slog.New(slog.NewTextHandler(env.logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	step := func(format string, args ...any) {
		fmt.Fprintf(progress, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	step("demo directory %s (logs: n1.log, n2.log, n3.log for the nodes, demo.log for the rest)", env.dir)

	if err := env.startWorkspace(ctx); err != nil {
		return fmt.Errorf("demo: workspace: %w", err)
	}
	step("workspace serving on %s (one cloud co-signer: 2-of-2 CMP)", env.ws.Addr())
	handlerKey, err := env.prepareCallback()
	if err != nil {
		return fmt.Errorf("demo: callback handler: %w", err)
	}
	if env.cluster, err = newDemoCluster(exe, env.dir, demoNodes, "http://"+env.cbAddr, filepath.Join(env.dir, "handler-public.pem")); err != nil {
		return fmt.Errorf("demo: node configs: %w", err)
	}
	n1 := env.cluster.nodes[0]
	if err := env.cluster.bootstrap(ctx); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	step("%s bootstrapped the cluster: admin API http://%s, raft %s", n1.id, n1.cfg.Admin.Listen, n1.cfg.Raft.Bind)
	if err := env.serveCallback(ctx, handlerKey); err != nil {
		return fmt.Errorf("demo: callback handler: %w", err)
	}
	step("callback handler serving on http://%s with the demo policy", env.cbAddr)
	for _, n := range env.cluster.nodes[1:] {
		if err := env.cluster.join(ctx, n); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		step("%s joined with a join token minted on %s, and serves: admin API http://%s, raft %s", n.id, n1.id, n.cfg.Admin.Listen, n.cfg.Raft.Bind)
	}

	step("pairing through %s: MPC key generation with the cloud co-signer (a few seconds)...", n1.id)
	if err := env.pair(ctx); err != nil {
		return fmt.Errorf("demo: pairing: %w", err)
	}
	step("paired API user %s; all %d nodes serve it", env.userID, demoNodes)

	plan := demoPlan(f.requests)
	ids, err := env.submit(ctx, plan)
	if err != nil {
		return fmt.Errorf("demo: submit: %w", err)
	}
	step("submitted %d transactions and %d config changes", f.requests, len(plan)-f.requests)

	w := newDemoWatch(env, plan, ids, progress, start)
	final, err := w.run(ctx)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	verify, err := env.admin.Verify(ctx, &protocol.WsVerifyRequest{})
	if err != nil {
		return fmt.Errorf("demo: verify: %w", err)
	}
	summarized = true
	res, ok := summarize(out, plan, ids, final, verify)
	res.Nodes = demoNodes
	if w.fo != nil {
		res.Killed = w.fo.victim
		d := w.fo.times()
		res.FailedOver = len(d)
		if longest, median, found := failoverFigures(d); found {
			res.FailoverMS, res.FailoverP50MS = ptr(longest.Milliseconds()), ptr(median.Milliseconds())
		}
	}
	if !w.complete() {
		ok = false
		fmt.Fprintf(out, "THE DEMO DID NOT SEE THE FAILOVER THROUGH: it stopped %s.\n", w.phase)
	}
	if f.keep {
		env.printKeep(out, exe)
	}
	line, _ := json.Marshal(res)
	fmt.Fprintln(out, string(line))
	if f.keep {
		<-ctx.Done()
	}
	if !ok {
		return fmt.Errorf("demo: the cluster did not do everything it should (logs in %s)", env.dir)
	}
	if f.dir == "" {
		env.close()
		_ = os.RemoveAll(env.dir)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func (e *demoEnv) startWorkspace(context.Context) error {
	e.wsDir = filepath.Join(e.dir, "workspace")
	cfg := workspace.DefaultConfig()
	cfg.DataDir = e.wsDir
	cfg.Listen = "127.0.0.1:0"
	cfg.CloudCosigners = 1
	cfg.Quorum = 2
	cfg.Logger = e.log.With("component", "workspace")
	ws, err := workspace.Open(cfg)
	if err != nil {
		return err
	}
	e.ws = ws
	ws.Start()
	if e.admin, err = client.DialAdmin(e.wsDir); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.admin.WaitReady(ctx)
}

// prepareCallback makes the handler's key and policy files and binds its
// listener, so that the node's config can name them.
func (e *demoEnv) prepareCallback() (*callbackHandlerKey, error) {
	key, err := callback.GenerateKey(callback.KeyTypeEC)
	if err != nil {
		return nil, err
	}
	pubPEM, err := callback.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(e.dir, "handler-public.pem"), pubPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(e.dir, "policy.yaml"), []byte(demoPolicy), 0o644); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.cbAddr = ln.Addr().String()
	return &callbackHandlerKey{key: key, ln: ln}, nil
}

type callbackHandlerKey struct {
	key crypto.Signer
	ln  net.Listener
}

// serveCallback starts the reference handler, trusting the cluster's
// callback key, which the first node serves.
func (e *demoEnv) serveCallback(ctx context.Context, hk *callbackHandlerKey) error {
	policy, err := callback.LoadPolicy(filepath.Join(e.dir, "policy.yaml"))
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, demoCallTimeout)
	pem, err := e.cluster.nodes[0].admin.CallbackPublicKey(cctx)
	cancel()
	if err != nil {
		return err
	}
	key, err := callback.ParsePublicKeyPEM(pem)
	if err != nil {
		return err
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("the cluster's callback key is a %T, not RSA", key)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "node-callback-public.pem"), pem, 0o644); err != nil {
		return err
	}
	cfg := callback.DefaultServerConfig()
	cfg.Policy = policy
	cfg.Key = hk.key
	cfg.CosignerKeys = []*rsa.PublicKey{pub}
	cfg.Logger = e.log.With("component", "callback")
	srv, err := callback.NewServer(cfg)
	if err != nil {
		return err
	}
	e.cbSrv = &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelWarn)}
	go func() { _ = e.cbSrv.Serve(hk.ln) }()
	return nil
}

func (e *demoEnv) pair(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	resp, err := e.admin.CreateUser(cctx, &protocol.WsCreateUserRequest{
		Name: "demo-cosigner", Role: protocol.WsRole_WS_ROLE_BOTH,
	})
	cancel()
	if err != nil {
		return err
	}
	info, err := e.cluster.nodes[0].admin.Pair(ctx, node.PairRequest{Token: resp.GetPairingToken()})
	if err != nil {
		return err
	}
	e.userID = info.ID
	// Every node serves the user once it sees its record through raft;
	// wait for that, so that all of them poll and claim from the start.
	want := info.WorkspaceID + "/" + info.ID
	cctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, n := range e.cluster.nodes {
		for {
			st, err := n.status(cctx)
			if err == nil && slices.Contains(st.Users, want) {
				break
			}
			select {
			case <-cctx.Done():
				return fmt.Errorf("%s does not serve user %s: %w", n.id, want, cctx.Err())
			case <-time.After(demoTick):
			}
		}
	}
	return nil
}

func (e *demoEnv) submit(ctx context.Context, plan []demoItem) ([]string, error) {
	ids := make([]string, len(plan))
	for i, it := range plan {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var r *protocol.WsRequest
		var err error
		if it.tx != nil {
			r, err = e.admin.SubmitTransaction(cctx, &protocol.WsSubmitTransactionRequest{UserId: e.userID, Transaction: it.tx})
		} else {
			r, err = e.admin.SubmitConfigChange(cctx, &protocol.WsSubmitConfigChangeRequest{UserId: e.userID, ConfigChange: it.cc})
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.label, err)
		}
		ids[i] = r.GetId()
	}
	return ids, nil
}

func (e *demoEnv) listRequests(ctx context.Context) ([]*protocol.WsRequest, error) {
	var all []*protocol.WsRequest
	var after uint64
	for range 100 {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := e.admin.ListRequests(cctx, &protocol.WsListRequestsRequest{UserId: e.userID, AfterSeq: after})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("demo: list requests: %w", err)
		}
		all = append(all, resp.GetRequests()...)
		if after = resp.GetNextAfterSeq(); after == 0 {
			break
		}
	}
	return all, nil
}

// summarize prints the human summary and reports whether every request
// ended as the policy says and the workspace's ledger is sound.
func summarize(out io.Writer, plan []demoItem, ids []string, final map[string]*protocol.WsRequest, v *protocol.WsVerifyResponse) (demoResult, bool) {
	bad := map[string]string{}
	for _, p := range v.GetProblems() {
		bad[p.GetRequestId()] = p.GetProblem()
	}
	res := demoResult{Submitted: len(ids)}
	ok := true
	fmt.Fprintln(out, "\nrequest                 expected  outcome   verified  what")
	for i, it := range plan {
		r := final[ids[i]]
		state := protocol.WsRequestState_WS_REQUEST_STATE_UNSPECIFIED
		if r != nil {
			state = r.GetState()
		}
		verified := ""
		switch state {
		case protocol.WsRequestState_WS_REQUEST_STATE_SIGNED:
			res.Signed++
		case protocol.WsRequestState_WS_REQUEST_STATE_APPROVED:
			res.Approved++
		case protocol.WsRequestState_WS_REQUEST_STATE_REJECTED:
			res.Rejected++
		default:
			res.Failed++
		}
		if state == protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || state == protocol.WsRequestState_WS_REQUEST_STATE_APPROVED {
			if p, found := bad[ids[i]]; found {
				verified = "NO: " + p
			} else {
				verified = "yes"
				res.Verified++
			}
		}
		outcome := stateName(state)
		mark := ""
		if outcome != it.expect.String() || (verified != "" && verified != "yes") {
			ok, mark = false, "  <-- unexpected"
		}
		what := it.label
		if r != nil && r.GetReason() != "" {
			what += " (" + r.GetReason() + ")"
		}
		fmt.Fprintf(out, "%-22s  %-8s  %-8s  %-8s  %s%s\n", ids[i], it.expect, outcome, verified, what, mark)
	}
	verdict := "every request ended as the policy says, and the workspace verified every signature and approval"
	if !ok {
		verdict = "SOME REQUESTS DID NOT END AS THE POLICY SAYS"
	}
	fmt.Fprintf(out, "\n%d submitted: %d signed, %d approved, %d rejected, %d failed; %d verified by the workspace.\n%s.\n",
		res.Submitted, res.Signed, res.Approved, res.Rejected, res.Failed, res.Verified, verdict)
	problems := ledgerProblems(final, v)
	for _, p := range problems {
		fmt.Fprintf(out, "LEDGER: %s\n", p)
	}
	if len(problems) == 0 {
		fmt.Fprintf(out, "The workspace's ledger: %d signatures, each with its own presignature; %d approvals; nothing it could not verify.\n",
			v.GetSignaturesChecked(), v.GetApprovalsChecked())
	}
	return res, ok && len(problems) == 0
}

// ledgerProblems checks the workspace's ledger of final: every signature
// and approval verified, and no presignature signed twice (I1), which a
// failover must not break.
func ledgerProblems(final map[string]*protocol.WsRequest, v *protocol.WsVerifyResponse) []string {
	var problems []string
	for _, p := range v.GetProblems() {
		problems = append(problems, fmt.Sprintf("%s does not verify: %s", p.GetRequestId(), p.GetProblem()))
	}
	used := map[string]string{}
	signatures := 0
	for _, id := range slices.Sorted(maps.Keys(final)) {
		for _, sig := range final[id].GetSignatures() {
			signatures++
			if other, dup := used[sig.GetPresignId()]; dup {
				problems = append(problems, fmt.Sprintf("presignature %s signed twice: %s and %s", sig.GetPresignId(), other, id))
			}
			used[sig.GetPresignId()] = id
		}
	}
	if uint64(signatures) != v.GetSignaturesChecked() {
		problems = append(problems, fmt.Sprintf("the requests carry %d signatures, the workspace checked %d", signatures, v.GetSignaturesChecked()))
	}
	return problems
}

// printKeep tells how to poke at the cluster that --keep leaves running.
func (e *demoEnv) printKeep(out io.Writer, exe string) {
	fmt.Fprintf(out, "\nEverything is still running; Ctrl-C stops it. Logs in %s: n1.log, n2.log, n3.log, demo.log.\n", e.dir)
	for _, n := range e.cluster.nodes {
		tokenFile := filepath.Join(n.cfg.DataDir, node.AdminTokenFile)
		// A demo's token guards a throwaway cluster on loopback: print it,
		// so that the console's login form can take it.
		token, err := os.ReadFile(tokenFile)
		if err != nil {
			token = []byte("(unreadable: " + err.Error() + ")")
		}
		fmt.Fprintf(out, `  %[1]s  console  http://%[4]s/  (log in with the admin token %[5]s)
      config   %[2]s, admin token file %[3]s
      health   curl http://%[4]s/v1/health
      status   curl -H "Authorization: Bearer $(cat %[3]s)" http://%[4]s/v1/status
      metrics  curl http://%[4]s/metrics
`, n.id, n.confPath, tokenFile, n.cfg.Admin.Listen, strings.TrimSpace(string(token)))
	}
	n1 := e.cluster.nodes[0].confPath
	fmt.Fprintf(out, `  members         %[1]s node cluster list --config %[2]s
  paired users    %[1]s node users --config %[2]s
  callback key    %[1]s node print-public-key --config %[2]s
  requests        %[1]s workspace requests --data-dir %[3]s
  verify          %[1]s workspace verify --data-dir %[3]s
  submit more     %[1]s workspace submit tx --data-dir %[3]s --user %[4]s --asset ETH --amount 1 --to 0xd3m0a11ce00000000000000000000000000000a1
  policy          %[5]s/policy.yaml (callback handler on http://%[6]s)
`, exe, n1, e.wsDir, e.userID, e.dir, e.cbAddr)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
