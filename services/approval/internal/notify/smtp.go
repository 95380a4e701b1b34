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
	"github.com/wneessen/go-mail/smtp"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/heraldshared/media"
)

// SMTP sends approval emails through an SMTP server, over a small pool of connections it keeps open: a
// new connection per email (TCP, EHLO, STARTTLS, AUTH) cost more than the email itself. At most
// MaxConnections emails are sent at once; callers beyond that wait for a connection.
type SMTP struct {
	host   string
	from   string
	client *gomail.Client // the settings; it dials a connection per pool slot and holds none itself
	// slots holds a token per connection that may be open; idle holds the open ones not in use.
	slots chan struct{}
	idle  chan *pooledConn
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

// pooledConn is an open SMTP connection and when it was last used.
type pooledConn struct {
	c        *smtp.Client
	lastUsed time.Time
}

// DefaultMaxConnections is how many SMTP connections a mailer keeps when NewSMTP is not told.
const DefaultMaxConnections = 4

// maxIdle is how long a connection may sit unused and still be reused. Servers drop idle sessions (RFC
// 5321 suggests five minutes); well below that, a reused connection is rarely a dead one.
const maxIdle = 30 * time.Second

var _ approval.Mailer = (*SMTP)(nil)

// NewSMTP returns a mailer for the server at rawURL, sending as from. The scheme picks the transport:
// smtp:// tries STARTTLS when the server offers it, smtp+starttls:// insists on it, smtps:// uses implicit
// TLS, smtp+plain:// never uses TLS (a local development server). User and password in the URL enable
// PLAIN authentication.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	return NewSMTPPool(rawURL, from, DefaultMaxConnections)
}

// NewSMTPPool is NewSMTP with at most maxConns connections open at once (zero or less: the default).
func NewSMTPPool(rawURL, from string, maxConns int) (*SMTP, error) {
	if maxConns <= 0 {
		maxConns = DefaultMaxConnections
	}
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
	client, err := gomail.NewClient(u.Hostname(), opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return &SMTP{host: u.Hostname(), from: from, client: client, slots: make(chan struct{}, maxConns), idle: make(chan *pooledConn, maxConns)}, nil
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
	if err := s.send(ctx, m); err != nil {
		return fmt.Errorf("send to %s: %w", e.To, err)
	}
	return nil
}

// send sends m over a pooled connection. A reused connection that turns out dead before anything was
// sent (the server dropped it while idle) is replaced by a fresh one once; any other failure is returned
// and the connection dropped, so the next email starts on a clean session.
func (s *SMTP) send(ctx context.Context, m *gomail.Msg) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.slots }()
	for attempt := 0; ; attempt++ {
		pc, reused, err := s.conn(ctx)
		if err != nil {
			return err
		}
		err = s.client.SendWithSMTPClient(pc.c, m)
		if err == nil {
			pc.lastUsed = time.Now()
			s.idle <- pc // never blocks: there are as many idle places as slots
			return nil
		}
		_ = s.client.CloseWithSMTPClient(pc.c)
		if m.IsDelivered() {
			// The server took the message; only the session reset after it failed.
			return nil
		}
		var se *gomail.SendError
		if reused && attempt == 0 && errors.As(err, &se) && se.Reason == gomail.ErrConnCheck {
			continue // nothing was sent on the dead connection
		}
		return err
	}
}

// conn returns an idle connection, or a new one when none is idle (or the idle one sat too long), and
// whether it was reused. The caller holds a slot.
func (s *SMTP) conn(ctx context.Context) (*pooledConn, bool, error) {
	for {
		select {
		case pc := <-s.idle:
			if time.Since(pc.lastUsed) < maxIdle {
				return pc, true, nil
			}
			_ = s.client.CloseWithSMTPClient(pc.c)
			continue
		default:
		}
		c, err := s.client.DialToSMTPClientWithContext(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("dial: %w", err)
		}
		return &pooledConn{c: c}, false, nil
	}
}

// Close closes the idle connections. Emails sent after Close open new ones.
func (s *SMTP) Close() error {
	var errs []error
	for {
		select {
		case pc := <-s.idle:
			errs = append(errs, s.client.CloseWithSMTPClient(pc.c))
		default:
			return errors.Join(errs...)
		}
	}
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
