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
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
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

// demoDeadline bounds the wait for every request to finish.
const demoDeadline = 150 * time.Second

type demoFlags struct {
	requests int
	keep     bool
	dir      string
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo [--requests N] [--keep]",
		Short: "Run a workspace, a node and a callback handler on loopback, pair them and sign",
		Long: "demo starts, in this process and on loopback ports, a workspace simulator with one cloud " +
			"co-signer (2-of-2 CMP, for speed: a presignature costs about 2 s of CPU instead of 4 s), " +
			"one Coterie node and the reference callback handler with a demo policy (per-asset maximum " +
			"amounts, a destination allowlist, config-change types allowed but ADD_USER, one RETRY rule). " +
			"It pairs the node, submits N transactions (some break the policy, the first is answered RETRY " +
			"once) and one config change of each of the eight types, shows progress, and asks the workspace " +
			"to verify every signature and approval. It prints a summary and, last, a JSON line; it exits 0 " +
			"only if every request the policy allows was signed or approved and verified, and every other " +
			"one was rejected. Logs go to demo.log in its directory.",
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
	dir      string
	log      *slog.Logger
	logFile  *os.File
	ws       *workspace.Workspace
	wsDir    string
	admin    *client.Admin
	node     *node.Node
	nodeConf string
	cbSrv    *http.Server
	cbAddr   string
	userID   string
}

func (e *demoEnv) close() {
	if e.node != nil {
		_ = e.node.Close()
		e.node = nil
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
	Submitted int `json:"submitted"`
	Signed    int `json:"signed"`
	Approved  int `json:"approved"`
	Rejected  int `json:"rejected"`
	Failed    int `json:"failed"`
	Verified  int `json:"verified"`
}

func runDemo(cmd *cobra.Command, f demoFlags) (err error) {
	if f.requests < 1 || f.requests > 200 {
		return errors.New("demo: --requests must be 1 to 200")
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out, progress := cmd.OutOrStdout(), cmd.ErrOrStderr()
	start := time.Now()

	env := &demoEnv{dir: f.dir}
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
	step("demo directory %s (logs in demo.log)", env.dir)

	if err := env.startWorkspace(ctx); err != nil {
		return fmt.Errorf("demo: workspace: %w", err)
	}
	step("workspace serving on %s (one cloud co-signer: 2-of-2 CMP)", env.ws.Addr())
	handlerKey, err := env.prepareCallback()
	if err != nil {
		return fmt.Errorf("demo: callback handler: %w", err)
	}
	if err := env.startNode(ctx); err != nil {
		return fmt.Errorf("demo: node: %w", err)
	}
	step("node ready; admin API http://%s", env.node.AdminAddr())
	if err := env.serveCallback(handlerKey); err != nil {
		return fmt.Errorf("demo: callback handler: %w", err)
	}
	step("callback handler serving on http://%s with the demo policy", env.cbAddr)

	step("pairing: MPC key generation with the cloud co-signer (a few seconds)...")
	if err := env.pair(ctx); err != nil {
		return fmt.Errorf("demo: pairing: %w", err)
	}
	step("paired API user %s", env.userID)

	plan := demoPlan(f.requests)
	ids, err := env.submit(ctx, plan)
	if err != nil {
		return fmt.Errorf("demo: submit: %w", err)
	}
	step("submitted %d transactions and %d config changes", f.requests, len(plan)-f.requests)

	final, err := env.await(ctx, ids, progress, start)
	if err != nil {
		return err
	}
	verify, err := env.admin.Verify(ctx, &protocol.WsVerifyRequest{})
	if err != nil {
		return fmt.Errorf("demo: verify: %w", err)
	}
	res, ok := summarize(out, plan, ids, final, verify)
	if f.keep {
		env.printKeep(out)
	}
	line, _ := json.Marshal(res)
	fmt.Fprintln(out, string(line))
	if f.keep {
		<-ctx.Done()
	}
	if !ok {
		return fmt.Errorf("demo: some requests did not end as the policy says (logs: %s)", filepath.Join(env.dir, "demo.log"))
	}
	if f.dir == "" {
		env.close()
		_ = os.RemoveAll(env.dir)
	}
	return nil
}

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

func (e *demoEnv) startNode(ctx context.Context) error {
	raftAddr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	e.nodeConf = filepath.Join(e.dir, "node.yaml")
	conf := demoNodeConfig(filepath.Join(e.dir, "node"), raftAddr, "127.0.0.1:0", "http://"+e.cbAddr,
		filepath.Join(e.dir, "handler-public.pem"), filepath.Join(e.dir, "sim-platform.key"))
	if err := os.WriteFile(e.nodeConf, []byte(conf), 0o600); err != nil {
		return err
	}
	cfg, err := node.LoadConfig(e.nodeConf)
	if err != nil {
		return err
	}
	// The node names its components (node, cluster, actors, ...) itself.
	cfg.Logger = e.log
	if e.node, err = node.New(cfg); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return e.node.Start(ctx)
}

// serveCallback starts the reference handler, trusting the node's
// callback key.
func (e *demoEnv) serveCallback(hk *callbackHandlerKey) error {
	policy, err := callback.LoadPolicy(filepath.Join(e.dir, "policy.yaml"))
	if err != nil {
		return err
	}
	pub := e.node.CallbackPublicKey()
	pem, err := callback.MarshalPublicKeyPEM(pub)
	if err != nil {
		return err
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
	info, err := e.node.Pair(ctx, node.PairRequest{Token: resp.GetPairingToken()})
	if err != nil {
		return err
	}
	e.userID = info.ID
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

// terminal reports whether a request has its final state.
func terminal(s protocol.WsRequestState) bool {
	switch s {
	case protocol.WsRequestState_WS_REQUEST_STATE_SIGNED, protocol.WsRequestState_WS_REQUEST_STATE_APPROVED,
		protocol.WsRequestState_WS_REQUEST_STATE_REJECTED, protocol.WsRequestState_WS_REQUEST_STATE_FAILED,
		protocol.WsRequestState_WS_REQUEST_STATE_EXPIRED:
		return true
	}
	return false
}

// await polls the workspace until every request is terminal or the
// deadline passes, showing progress.
func (e *demoEnv) await(ctx context.Context, ids []string, progress io.Writer, start time.Time) (map[string]*protocol.WsRequest, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	tty := isTerminal(progress)
	deadline := time.Now().Add(demoDeadline)
	last := ""
	for {
		reqs, err := e.listRequests(ctx)
		if err != nil {
			return nil, err
		}
		final := map[string]*protocol.WsRequest{}
		counts := map[protocol.WsRequestState]int{}
		done := 0
		for _, r := range reqs {
			if !want[r.GetId()] {
				continue
			}
			final[r.GetId()] = r
			counts[r.GetState()]++
			if terminal(r.GetState()) {
				done++
			}
		}
		depth := 0
		for _, d := range e.node.Status().PoolDepths {
			depth += d
		}
		line := fmt.Sprintf("[%5.1fs] %d/%d done: %d signed, %d approved, %d rejected, %d failed; presignatures ready %d",
			time.Since(start).Seconds(), done, len(ids),
			counts[protocol.WsRequestState_WS_REQUEST_STATE_SIGNED], counts[protocol.WsRequestState_WS_REQUEST_STATE_APPROVED],
			counts[protocol.WsRequestState_WS_REQUEST_STATE_REJECTED],
			counts[protocol.WsRequestState_WS_REQUEST_STATE_FAILED]+counts[protocol.WsRequestState_WS_REQUEST_STATE_EXPIRED], depth)
		finished := done == len(ids)
		if tty {
			fmt.Fprintf(progress, "\r%s", line)
			if finished {
				fmt.Fprintln(progress)
			}
		} else if line[9:] != last || finished {
			fmt.Fprintln(progress, line)
			last = line[9:]
		}
		if finished {
			return final, nil
		}
		if time.Now().After(deadline) {
			if tty {
				fmt.Fprintln(progress)
			}
			fmt.Fprintf(progress, "gave up waiting after %s\n", demoDeadline)
			return final, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
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
// ended as the policy says.
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
		outcome := strings.ToLower(strings.TrimPrefix(state.String(), "WS_REQUEST_STATE_"))
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
	return res, ok
}

func (e *demoEnv) printKeep(out io.Writer) {
	admin := e.node.AdminAddr()
	fmt.Fprintf(out, `
Everything is still running; Ctrl-C stops it. Logs: %[1]s/demo.log
  node status     curl -H "Authorization: Bearer $(cat %[1]s/node/admin.token)" http://%[2]s/v1/status
  node health     curl http://%[2]s/v1/health
  node metrics    curl http://%[2]s/metrics
  members         coterie node cluster list --config %[3]s
  paired users    coterie node users --config %[3]s
  callback key    coterie node print-public-key --config %[3]s
  requests        coterie workspace --data-dir %[4]s requests
  verify          coterie workspace --data-dir %[4]s verify
  submit more     coterie workspace --data-dir %[4]s submit tx --user %[5]s --asset ETH --amount 1 --to 0xd3m0a11ce00000000000000000000000000000a1
  policy          %[1]s/policy.yaml (callback handler on http://%[6]s)
`, e.dir, admin, e.nodeConf, e.wsDir, e.userID, e.cbAddr)
}

// freeLoopbackAddr returns a loopback address whose port was free a moment
// ago (raft needs a concrete address to bootstrap with).
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
