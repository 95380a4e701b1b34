// Package mailbox is a small SMTP server that keeps what it receives and shows it on a web page. The local
// stack uses it in place of a real mail server so that approval emails, and their links, can be opened
// on a development machine; tests read the same messages from its JSON endpoint.
package mailbox

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// maxMessageBytes bounds one message; approval emails are a few kilobytes.
const maxMessageBytes = 10 << 20

// Message is one received email.
type Message struct {
	ID       int       `json:"id"`
	From     string    `json:"from"`
	To       []string  `json:"to"`
	Subject  string    `json:"subject"`
	Date     time.Time `json:"date"`
	Text     string    `json:"text"`
	HTML     string    `json:"html"`
	Received time.Time `json:"received"`
	// Attachments are the pictures the message carries (their types and sizes), in order.
	Attachments []Attachment `json:"attachments,omitempty"`
}

// Mailbox receives mail over SMTP and keeps it in memory and, if it has a directory, on disk.
type Mailbox struct {
	dir string
	log *slog.Logger

	mu   sync.Mutex
	msgs []Message
}

// New returns a mailbox. With dir set, messages are kept there as .eml files and loaded again on start.
func New(dir string, log *slog.Logger) (*Mailbox, error) {
	if log == nil {
		return nil, errors.New("mailbox: nil logger")
	}
	m := &Mailbox{dir: dir, log: log}
	if dir == "" {
		return m, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailbox dir: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		return nil, fmt.Errorf("mailbox dir: %w", err)
	}
	sort.Strings(files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("mailbox: %w", err)
		}
		info, _ := os.Stat(f)
		msg, err := parse(raw)
		if err != nil {
			log.Warn("mailbox: skipping unreadable message", "file", f, "err", err)
			continue
		}
		msg.Received = info.ModTime().UTC()
		m.add(msg)
	}
	return m, nil
}

func (m *Mailbox) add(msg Message) Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg.ID = len(m.msgs) + 1
	m.msgs = append(m.msgs, msg)
	return msg
}

// Messages returns every message received so far, oldest first.
func (m *Mailbox) Messages() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Message(nil), m.msgs...)
}

func (m *Mailbox) message(id int) (Message, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id < 1 || id > len(m.msgs) {
		return Message{}, false
	}
	return m.msgs[id-1], true
}

func (m *Mailbox) receive(from string, to []string, raw []byte) error {
	msg, err := parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "unreadable message: " + err.Error()}
	}
	if msg.From == "" {
		msg.From = from
	}
	msg.To = to
	msg.Received = time.Now().UTC()
	msg = m.add(msg)
	if m.dir != "" {
		name := filepath.Join(m.dir, fmt.Sprintf("%08d.eml", msg.ID))
		if err := os.WriteFile(name, raw, 0o600); err != nil {
			m.log.Error("mailbox: could not keep message on disk", "err", err)
		}
	}
	m.log.Info("mailbox: message received", "id", msg.ID, "to", strings.Join(to, ","), "subject", msg.Subject)
	return nil
}

// Serve accepts SMTP connections on l until Close is called on the returned server.
func (m *Mailbox) Serve(l net.Listener) *smtp.Server {
	s := smtp.NewServer(backend{m})
	s.Domain = "localhost"
	s.MaxMessageBytes = maxMessageBytes
	s.MaxRecipients = 100
	s.ReadTimeout = time.Minute
	s.WriteTimeout = time.Minute
	s.AllowInsecureAuth = true
	go func() {
		if err := s.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			m.log.Error("mailbox: smtp server stopped", "err", err)
		}
	}()
	return s
}

type backend struct{ m *Mailbox }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{m: b.m}, nil }

type session struct {
	m    *Mailbox
	from string
	to   []string
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = append(s.to, to); return nil }
func (s *session) Reset()                                      { s.from, s.to = "", nil }
func (s *session) Logout() error                               { return nil }

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(io.LimitReader(r, maxMessageBytes+1))
	if err != nil {
		return err
	}
	if len(raw) > maxMessageBytes {
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too big"}
	}
	return s.m.receive(s.from, s.to, raw)
}

// parse reads the headers and the text and HTML bodies of a MIME message.
func parse(raw []byte) (Message, error) {
	mm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(mm.Header.Get("Subject"))
	if err != nil {
		subject = mm.Header.Get("Subject")
	}
	msg := Message{From: mm.Header.Get("From"), Subject: subject}
	if d, err := mm.Header.Date(); err == nil {
		msg.Date = d.UTC()
	}
	err = walk(mm.Header.Get("Content-Type"), mm.Header.Get("Content-Transfer-Encoding"), mm.Body, &msg)
	return msg, err
}

func walk(contentType, encoding string, body io.Reader, msg *Message) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			// multipart decodes quoted-printable parts itself and hides the header.
			if err := walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, msg); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	switch mediaType {
	case "text/plain":
		msg.Text += string(b)
	case "text/html":
		msg.HTML += string(b)
	default:
		if strings.HasPrefix(mediaType, "image/") {
			msg.Attachments = append(msg.Attachments, Attachment{ContentType: mediaType, Size: len(b)})
		}
	}
	return nil
}

// Attachment is a picture attached to a message.
type Attachment struct {
	ContentType string `json:"content_type"`
	Size        int    `json:"size"`
}
