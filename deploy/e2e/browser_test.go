package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/deploy/stack"
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
// typing (the inline script runs under the page's CSP), the page names the account it publishes to, the
// edited text is what gets published, and the link, opened again once the post is out, says what was
// decided and links to the published post.
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

	var account, before, count, result string
	err := chromedp.Run(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible("#text", chromedp.ByID),
		chromedp.Text("#account", &account, chromedp.ByID),
		chromedp.Text("#count", &before, chromedp.ByID),
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
	// The local stack tells the gateway the sandbox's account.
	if want := "Approving publishes it on X as @contoso."; account != want {
		t.Errorf("the page names the account as %q, want %q", account, want)
	}
	// The server's count of the requested text first; then the script's, after the typing.
	if want := fmt.Sprintf("%d of 280 characters as X counts them", len(text)); before != want {
		t.Errorf("count before editing = %q, want %q", before, want)
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
		t.Fatalf("after approving with edits the post is %d %s", final.status, final.body)
	}
	// The timeline holds the edited text once, and the requested text not at all.
	if n, m := len(tweetsWithText(t, st, edited)), len(tweetsWithText(t, st, text)); n != 1 || m != 0 {
		t.Errorf("the sandbox timeline has the edited text %d times and the requested text %d times, want 1 and 0", n, m)
	}
	pub, _ := got["publication"].(map[string]any)
	pubURL, _ := pub["url"].(string)
	if pubURL == "" {
		t.Fatalf("published post without a publication URL: %s", final.body)
	}

	// The used link, opened again now that the post is out, says what was decided and links to it.
	var message, decided, href string
	var hasHref bool
	err = chromedp.Run(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible("#published a", chromedp.ByQuery),
		chromedp.Text("#message", &message, chromedp.ByID),
		chromedp.Text("#decided", &decided, chromedp.ByID),
		chromedp.AttributeValue("#published a", "href", &href, &hasHref, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("browser, reopening the link: %v", err)
	}
	if message != "You already answered through this link." {
		t.Errorf("the used link says %q", message)
	}
	if want := "Approved by " + stack.DemoApprover + " on "; !strings.HasPrefix(decided, want) || !strings.HasSuffix(decided, ", without a comment.") {
		t.Errorf("the used link says %q about the decision, want %q… without a comment", decided, want)
	}
	if !hasHref || href != pubURL {
		t.Errorf("the used link links to %q, want the publication %q", href, pubURL)
	}
}
