package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds the browser: HERALD_CHROMIUM, or chromium on the PATH (Debian's package). CI installs it;
// elsewhere the test is skipped with a message when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HERALD_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required under CI=true (.ci/run installs it): %v", err)
		}
		t.Skipf("chromium not installed (apt-get install chromium); CI=true makes this a failure")
	}
	return p
}

// TestApproverUsesARealBrowser opens the approval link in headless Chromium, types a comment and clicks
// Reject, as an approver would: the form, its token and the cross-origin protection must all work with the
// headers a real browser sends.
func TestApproverUsesARealBrowser(t *testing.T) {
	exe := chromium(t)
	st := start(t)
	text := fmt.Sprintf("Clicked in a browser %d", time.Now().UnixNano())
	r := postJSON(t, st, st.Info.DemoAPIKey, fmt.Sprintf(`{"tweet": %q, "requestedby": "jo"}`, text))
	link := approvalLink(t, st, text)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, time.Minute)
	defer cancel()

	var shown, result string
	err := chromedp.Run(ctx,
		chromedp.Navigate(link),
		chromedp.Text("#tweet", &shown, chromedp.ByID),
		chromedp.SendKeys("#comment", "Not this week", chromedp.ByID),
		chromedp.Click(`button[value="reject"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#message", chromedp.ByID),
		chromedp.Text("#message", &result, chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if shown != text {
		t.Errorf("the page showed %q, want the tweet %q", shown, text)
	}
	if result != "Rejected. Nothing will be posted, and the department will see your decision." {
		t.Errorf("after clicking Reject the page says %q", result)
	}
	final := pollFinal(t, st, st.Info.DemoAPIKey, r.header.Get("Location"))
	got := final.json(t)
	dec, _ := got["decision"].(map[string]any)
	if final.status != http.StatusOK || got["status"] != "rejected" || dec["comment"] != "Not this week" {
		t.Errorf("after the click the post is %d %s", final.status, final.body)
	}
}

// TestApproverEditsInARealBrowser approves with edits in headless Chromium: the live count follows the
// typing (the inline script runs under the page's CSP), and the edited text is what gets published.
func TestApproverEditsInARealBrowser(t *testing.T) {
	exe := chromium(t)
	st := start(t)
	text := fmt.Sprintf("Edit me in a browser %d", time.Now().UnixNano())
	edited := "Edited in a browser: " + text[len("Edit me in a browser "):] + " 🎉"
	r := postJSON(t, st, st.Info.DemoAPIKey, fmt.Sprintf(`{"tweet": %q, "requestedby": "jo"}`, text))
	link := approvalLink(t, st, text)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, time.Minute)
	defer cancel()

	var count, result string
	err := chromedp.Run(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible("#text", chromedp.ByID),
		chromedp.Clear("#text", chromedp.ByID),
		chromedp.SendKeys("#text", edited, chromedp.ByID),
		chromedp.Text("#count", &count, chromedp.ByID),
		chromedp.Click(`button[value="approve"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#message", chromedp.ByID),
		chromedp.Text("#message", &result, chromedp.ByID),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	// The emoji weighs 2, as on X.
	if want := fmt.Sprintf("%d of 280 characters as X counts them", len([]rune(edited))+1); count != want {
		t.Errorf("live count = %q, want %q", count, want)
	}
	if result != "Approved with your edits. Herald is publishing the edited text now." {
		t.Errorf("after clicking Approve the page says %q", result)
	}
	final := pollFinal(t, st, st.Info.DemoAPIKey, r.header.Get("Location"))
	got := final.json(t)
	if final.status != http.StatusOK || got["status"] != "published" || got["tweet"] != text || got["final_tweet"] != edited {
		t.Errorf("after approving with edits the post is %d %s", final.status, final.body)
	}
}
