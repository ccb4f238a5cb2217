package node

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/coterie-mpc/coterie/protocol"
)

// chromiumPath returns the Chromium the browser test drives: Debian's
// chromium, which `make test` installs when it is missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: `make test` installs Debian's chromium (apt-get install chromium)")
	return ""
}

// TestConsoleInBrowser drives headless Chromium against a running node:
// the console answers the login form, takes the admin token, shows the
// cluster, and shows a transaction submitted after the login as signed
// and a latency plot, without reloading the page. It saves a screenshot
// in the test's temporary directory (and in $COTERIE_SCREENSHOT_DIR when
// set).
func TestConsoleInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	f := fixtureNode(t)
	n, cfg, u, admin := f.n, f.cfg, f.u, f.admin
	token, err := os.ReadFile(filepath.Join(cfg.DataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium")), chromedp.WindowSize(1440, 900),
		// This machine has no network: Chromium is to ask nobody but the node.
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-quic", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctxT(t, 2*time.Minute), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer cancel()
	wait := chromedp.WithPollingTimeout(30 * time.Second)

	// Without a session the page is the login form; the token logs in.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(n.AdminURL()+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), strings.TrimSpace(string(token))),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("members")),
	); err != nil {
		t.Fatalf("log in: %v", err)
	}
	// A mark on the page shows at the end that it was never reloaded.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int]("window.consoleTestMark = 7")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelector("#members tbody").textContent.includes("n1") &&
		 document.querySelector("#members tbody").textContent.includes("leader") &&
		 document.querySelector("#health").textContent === "serving" &&
		 document.querySelector("#users tbody").textContent.includes("`+u.Info.ID+`")`, wait)); err != nil {
		t.Fatalf("the cluster and the user: %v", err)
	}

	r, err := admin.SubmitTransaction(ctxT(t, 10*time.Second), &protocol.WsSubmitTransactionRequest{UserId: u.Info.ID, Transaction: &protocol.WsTransaction{
		Asset: "ETH", Amount: "1", Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: "0"},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: "0xabc"}, Amount: "1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	row := `[...document.querySelectorAll("#decisions tbody tr")].find((tr) => tr.textContent.includes("` + r.GetId() + `"))`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](row+`?.textContent.includes("signed") ?? false`, wait)); err != nil {
		b, _ := json.Marshal(n.ConsoleState())
		dbg, derr := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#decisions").textContent + " | " + document.querySelector("#updated").textContent`))
		t.Logf("page: %s %v", dbg, derr)
		t.Fatalf("the signed request %s: %v; state %s", r.GetId(), err, b)
	}
	// The stages are sampled every 10 seconds.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelector('#latency .plot[data-stage="total"] svg') !== null`, wait)); err != nil {
		t.Fatalf("the latency plot: %v", err)
	}
	if mark, err := chromedp.Run(ctx, chromedp.Evaluate[int]("window.consoleTestMark")); err != nil || mark != 7 {
		t.Fatalf("the page was reloaded: mark %d, %v", mark, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "console.png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	// COTERIE_SCREENSHOT_DIR keeps a copy past the test, to look at.
	if keep := os.Getenv("COTERIE_SCREENSHOT_DIR"); keep != "" {
		if err := os.WriteFile(filepath.Join(keep, "console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
