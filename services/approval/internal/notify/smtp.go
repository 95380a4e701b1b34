// Package notify tells approvers about posts waiting for them: by email through an SMTP server.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strconv"
	texttemplate "text/template"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/heraldshared/media"
)

// SMTP sends approval emails through an SMTP server.
type SMTP struct {
	host  string
	opts  []gomail.Option
	from  string
	media MediaReader
}

// MediaReader reads a post's picture, refusing bytes that do not match its hash; *media.Store implements
// it.
type MediaReader interface {
	Get(ctx context.Context, ref media.Ref) ([]byte, error)
}

// WithMedia attaches each post's pictures to its approval emails, read through r. Without it emails
// carry the text only (and the page shows the pictures).
func (s *SMTP) WithMedia(r MediaReader) *SMTP {
	s.media = r
	return s
}

var _ approval.Mailer = (*SMTP)(nil)

// NewSMTP returns a mailer for the server at rawURL, sending as from. The scheme picks the transport:
// smtp:// tries STARTTLS when the server offers it, smtp+starttls:// insists on it, smtps:// uses implicit
// TLS, smtp+plain:// never uses TLS (a local development server). User and password in the URL enable
// PLAIN authentication.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not err itself: a *url.Error quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("HERALD_SMTP_URL is not a valid URL: %v", err)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("smtp url %q has no host", u.Redacted())
	}
	opts := []gomail.Option{gomail.WithTimeout(15 * time.Second)}
	port := 0
	switch u.Scheme {
	case "smtp":
		opts, port = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic)), 25
	case "smtp+starttls":
		opts, port = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory)), 587
	case "smtps":
		opts, port = append(opts, gomail.WithSSL()), 465
	case "smtp+plain":
		opts, port = append(opts, gomail.WithTLSPolicy(gomail.NoTLS)), 25
	default:
		return nil, fmt.Errorf("smtp url: unknown scheme %q (smtp, smtp+starttls, smtps, smtp+plain)", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("smtp url: bad port %q", p)
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if u.User != nil {
		pw, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(u.User.Username()), gomail.WithPassword(pw))
	}
	if from == "" {
		from = "Herald <herald@localhost>"
	}
	// Validate the options once now, so a bad configuration fails at start rather than at the first email.
	if _, err := gomail.NewClient(u.Hostname(), opts...); err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return &SMTP{host: u.Hostname(), opts: opts, from: from}, nil
}

// SendApprovalRequest implements approval.Mailer.
func (s *SMTP) SendApprovalRequest(ctx context.Context, e approval.ApprovalEmail) error {
	m := gomail.NewMsg()
	if err := m.From(s.from); err != nil {
		return fmt.Errorf("from %q: %w", s.from, err)
	}
	if err := m.AddToFormat(e.ToName, e.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	subject := fmt.Sprintf("Approval needed: post from %s", e.DepartmentName)
	if e.Reminder {
		subject = "Reminder: " + subject
	}
	m.Subject(subject)
	m.SetDate()
	m.SetMessageID()
	var text, html bytes.Buffer
	if err := textBody.Execute(&text, e); err != nil {
		return fmt.Errorf("render email: %w", err)
	}
	if err := htmlBody.Execute(&html, e); err != nil {
		return fmt.Errorf("render email: %w", err)
	}
	m.SetBodyString(gomail.TypeTextPlain, text.String())
	m.AddAlternativeString(gomail.TypeTextHTML, html.String())
	if err := s.attach(ctx, m, e); err != nil {
		return err
	}
	// A client per message: go-mail clients hold one connection and are not meant for concurrent use.
	c, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("send to %s: %w", e.To, err)
	}
	return nil
}

// attach adds the post's pictures as attachments, read from the media bucket and checked against their
// hashes: an approver sees exactly the pictures that will be posted. A picture that cannot be read fails
// the email (the outbox retries it) rather than asking for a decision on part of the post.
func (s *SMTP) attach(ctx context.Context, m *gomail.Msg, e approval.ApprovalEmail) error {
	if len(e.Media) == 0 {
		return nil
	}
	if s.media == nil {
		return errors.New("the post has pictures but the mailer cannot read the media bucket")
	}
	for i, pic := range e.Media {
		data, err := s.media.Get(ctx, media.Ref{Name: pic.Name, SHA256: pic.SHA256, ContentType: pic.ContentType, Size: pic.Size})
		if err != nil {
			return fmt.Errorf("picture %d of post %s: %w", i, e.PostID, err)
		}
		name := fmt.Sprintf("picture-%d%s", i+1, extension(pic.ContentType))
		if err := m.AttachReader(name, bytes.NewReader(data), gomail.WithFileContentType(gomail.ContentType(pic.ContentType))); err != nil {
			return fmt.Errorf("attach picture %d of post %s: %w", i, e.PostID, err)
		}
	}
	return nil
}

// extension is the file name extension of a picture type.
func extension(contentType string) string {
	switch contentType {
	case media.JPEG:
		return ".jpg"
	case media.PNG:
		return ".png"
	case media.GIF:
		return ".gif"
	case media.WEBP:
		return ".webp"
	}
	return ""
}

var textBody = texttemplate.Must(texttemplate.New("text").Parse(`{{.RequestedBy}} ({{.DepartmentName}}) asks to publish this post:

{{.Text}}
{{with .Media}}
With {{len .}} picture(s), attached to this email.
{{end}}
Review it, then approve or reject it here:
{{.Link}}

Or go straight to your answer (you confirm it on the page; opening a link decides nothing):
Approve: {{.Link}}?choice=approve
Reject:  {{.Link}}?choice=reject

The link is yours alone, works once, and expires {{.ExpiresAt.Format "2 Jan 2006 15:04 MST"}}.
`))

var htmlBody = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html>
<html><body style="font-family: sans-serif">
<p><strong>{{.RequestedBy}}</strong> ({{.DepartmentName}}) asks to publish this post:</p>
<blockquote style="border-left: 4px solid #1d9bf0; padding-left: 12px; white-space: pre-wrap">{{.Text}}</blockquote>
{{with .Media}}<p>With {{len .}} picture(s), attached to this email and shown on the approval page.</p>{{end}}
<p><a href="{{.Link}}?choice=approve" style="background:#00ba7c;color:#fff;padding:8px 16px;border-radius:16px;text-decoration:none">Approve</a>
&nbsp; <a href="{{.Link}}?choice=reject" style="background:#f4212e;color:#fff;padding:8px 16px;border-radius:16px;text-decoration:none">Reject</a>
&nbsp; <a href="{{.Link}}">Review the post</a></p>
<p style="color:#666">Each link opens the approval page with your choice selected; you confirm it there (you may edit the text or add a comment first). Opening a link decides nothing.</p>
<p style="color:#666">The link is yours alone, works once, and expires {{.ExpiresAt.Format "2 Jan 2006 15:04 MST"}}.</p>
</body></html>
`))
