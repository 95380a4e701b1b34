package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/tweetlen"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 MST") },
	"inc":  func(i int) int { return i + 1 },
}).ParseFS(templateFS, "templates/*.html"))

// approvalPage is what the approval templates show.
type approvalPage struct {
	Token      string
	CSRF       string
	Post       *approvalv1.Post
	Approver   string
	Department string
	State      string
	ExpiresAt  time.Time
	Message    string
	Outcome    string
	// Length is the post's weighted length and MaxLength X's limit, shown beside the editable text.
	Length    int
	MaxLength int
	// Script is the page's one inline script (the live count), allowed by its hash in the CSP.
	Script template.JS
	// Choice is the answer the approver picked in the email (approve or reject), preselected on the page;
	// it is only a preselection: the decision is still the form's POST.
	Choice string
	// Decided is the decision that settled the post, shown once the link can no longer decide (used, or
	// closed by another approver's answer); nil while the post waits.
	Decided *settledView
	// PublishedURL is where the post went once the publisher published it. The page links to it with a
	// plain <a href>: the CSP governs what the page loads, not where its links lead, and the no-referrer
	// policy keeps the link's token out of the Referer sent to X.
	PublishedURL string
	// Account is the X account the post will go out as (HERALD_X_ACCOUNT), shown beside the form so that
	// an approver knows where their approval publishes; empty when the gateway was not told.
	Account string
}

// settledView is the decision that settled a post, as the approval page words it.
type settledView struct {
	// Outcome is "Approved" or "Rejected", to start a sentence.
	Outcome  string
	Approver string
	At       time.Time
	Comment  string
}

// settled fills in what a link that can no longer decide shows about the post: who decided what, when,
// with which comment, and the published post once it is out.
func (p *approvalPage) settled(post *approvalv1.Post) {
	if d := post.GetDecision(); d != nil {
		outcome := "Rejected"
		if d.GetOutcome() == approvalv1.Outcome_OUTCOME_APPROVE {
			outcome = "Approved"
		}
		p.Decided = &settledView{Outcome: outcome, Approver: d.GetApprover(), At: d.GetDecidedAt().AsTime(), Comment: d.GetComment()}
	}
	p.PublishedURL = linkable(post.GetPublication().GetUrl())
}

// linkable returns u when it is an absolute http(s) URL, and "" otherwise. html/template would already
// neutralise a javascript: URL in an href; refusing anything but a web address keeps the page from
// showing a dead "#ZgotmplZ" link should a channel ever report something odd.
func linkable(u string) string {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
		return ""
	}
	return u
}

// csrfToken binds the approval form to its link: only a page served for that token can post it.
func (s *server) csrfToken(token string) string {
	mac := hmac.New(sha256.New, s.cfg.CSRFKey)
	mac.Write([]byte("approval-form\x00" + token))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (s *server) render(w http.ResponseWriter, status int, name string, data approvalPage) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	// The token is in the URL: keep it out of Referer headers and caches.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, data)
}

// showApproval shows the post an approval link points at. It never changes anything: mail scanners and
// link previews open links.
func (s *server) showApproval(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	resp, err := s.deps.Approvals.GetApproval(r.Context(), &approvalv1.GetApprovalRequest{Token: token})
	if err != nil {
		s.approvalError(w, r, err)
		return
	}
	page := approvalPage{
		Token: token, CSRF: s.csrfToken(token), Post: resp.GetPost(), Approver: resp.GetApproverEmail(),
		Department: resp.GetDepartmentName(), ExpiresAt: resp.GetExpiresAt().AsTime(),
		Length: tweetlen.Count(resp.GetPost().GetText()), MaxLength: tweetlen.MaxLength, Script: countScriptJS,
		Account: s.cfg.XAccount,
	}
	if c := r.URL.Query().Get("choice"); c == "approve" || c == "reject" {
		page.Choice = c
	}
	switch resp.GetState() {
	case approvalv1.ApprovalState_APPROVAL_STATE_OPEN:
		page.State = "open"
	case approvalv1.ApprovalState_APPROVAL_STATE_USED:
		page.Message = "You already answered through this link."
	case approvalv1.ApprovalState_APPROVAL_STATE_EXPIRED:
		page.Message = "This link has expired."
	case approvalv1.ApprovalState_APPROVAL_STATE_CANCELLED:
		page.Message = "This post was cancelled: there is nothing to decide."
	case approvalv1.ApprovalState_APPROVAL_STATE_REPLACED:
		page.Message = "This link was replaced by a newer one: use the link in the latest email about this post."
	default:
		page.Message = "This post was already decided: it is " + statusNames[resp.GetPost().GetStatus()] + "."
	}
	if page.State != "open" {
		page.settled(resp.GetPost())
	}
	s.render(w, http.StatusOK, "approval.html", page)
}

// showMedia serves a picture of the post an approval link points at, from the media bucket, to whoever
// holds the link (the same authority as the page): never from an outside URL, never anything but the
// bytes the department sent (hash-checked), with the type the gateway sniffed when it accepted them.
func (s *server) showMedia(w http.ResponseWriter, r *http.Request) {
	index, err := strconv.Atoi(r.PathValue("index"))
	if err != nil || index < 0 || r.PathValue("index") != strconv.Itoa(index) {
		s.fail(w, r, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such picture"})
		return
	}
	resp, err := s.deps.Approvals.GetApproval(r.Context(), &approvalv1.GetApprovalRequest{Token: r.PathValue("token")})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pics := resp.GetPost().GetMedia()
	if index >= len(pics) || len(pics[index].GetSha256()) != 32 || !media.Supported(pics[index].GetContentType()) {
		s.fail(w, r, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such picture"})
		return
	}
	m := pics[index]
	ref := media.Ref{Name: m.GetObjectName(), ContentType: m.GetContentType(), Size: m.GetSize()}
	copy(ref.SHA256[:], m.GetSha256())
	data, err := s.deps.Media.Get(r.Context(), ref)
	switch {
	case errors.Is(err, media.ErrNotFound):
		s.fail(w, r, &apiError{Status: http.StatusGone, Code: "gone", Message: "this picture was deleted after the post's retention period"})
		return
	case errors.Is(err, media.ErrTampered):
		s.logAt(r.Context(), r, slog.LevelError, "a picture in the media bucket does not match its hash; not served", "post_id", resp.GetPost().GetId(), "object", ref.Name)
		s.fail(w, r, &apiError{Status: http.StatusConflict, Code: "media_tampered", Message: "this picture was changed after it was requested and is not shown"})
		return
	case err != nil:
		s.fail(w, r, fmt.Errorf("%w: %w", eventbus.ErrUnavailable, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", ref.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	// The type is the one sniffed at intake; nosniff keeps a browser from guessing another, and the
	// CSP keeps the picture, opened on its own, from running or loading anything.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Content-Disposition", "inline")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

func (s *server) decide(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusBadRequest, "result.html", approvalPage{Message: "The form could not be read."})
		return
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(s.csrfToken(token))) {
		s.render(w, http.StatusForbidden, "result.html", approvalPage{Message: "This form did not come from Herald's approval page. Open the link from your email again."})
		return
	}
	var outcome approvalv1.Outcome
	switch r.PostForm.Get("decision") {
	case "approve":
		outcome = approvalv1.Outcome_OUTCOME_APPROVE
	case "reject":
		outcome = approvalv1.Outcome_OUTCOME_REJECT
	default:
		s.render(w, http.StatusBadRequest, "result.html", approvalPage{Message: "Choose Approve or Reject."})
		return
	}
	origin := clientAddr(r, s.cfg.TrustedProxies)
	// The text field holds the requested text unless the approver edited it; the approval service treats an
	// unchanged text as no edit.
	resp, err := s.deps.Approvals.Decide(r.Context(), &approvalv1.DecideRequest{
		Token: token, Outcome: outcome, Comment: r.PostForm.Get("comment"), Origin: origin, EditedText: r.PostForm.Get("text"),
	})
	if err != nil {
		s.approvalError(w, r, err)
		return
	}
	// A decision may make room under the department's cap: count afresh rather than from the cache.
	s.undecided.forget(resp.GetPost().GetDepartmentId())
	page := approvalPage{Post: resp.GetPost(), Outcome: outcomeNames[outcome], Message: "Rejected. Nothing will be posted, and the department will see your decision."}
	switch p := resp.GetPost(); {
	case p.GetStatus() == approvalv1.PostStatus_POST_STATUS_PENDING && p.GetMode() != "" && p.GetMode() != "first":
		page.Message = "Your answer is recorded. The post waits for more answers (" + p.GetMode() + ") before anything is published."
	case outcome == approvalv1.Outcome_OUTCOME_APPROVE && p.GetFinalText() != "":
		page.Message = "Approved with your edits. Herald is publishing the edited text now."
	case outcome == approvalv1.Outcome_OUTCOME_APPROVE:
		page.Message = "Approved. Herald is publishing the post now."
	}
	s.logAt(r.Context(), r, slog.LevelInfo, "approval decided", "post_id", resp.GetPost().GetId(), "outcome", page.Outcome)
	s.render(w, http.StatusOK, "result.html", page)
}

// approvalError answers an approver in plain words; the statuses follow toAPIError.
func (s *server) approvalError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	msg := "Something went wrong on Herald's side. Try again in a minute."
	switch {
	case status.Code(err) == codes.NotFound:
		msg = "This approval link is not valid. Check that you opened the whole link from the email."
	case ae.Status < 500:
		msg = ae.Message
	}
	if ae.Status >= 500 {
		s.logAt(r.Context(), r, slog.LevelError, "approval page failed", "err", err)
	}
	s.render(w, ae.Status, "result.html", approvalPage{Message: msg})
}
