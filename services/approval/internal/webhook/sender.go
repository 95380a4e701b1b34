package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

// Timeout bounds one delivery: connecting, sending and reading the answer's status.
const Timeout = 15 * time.Second

// The Standard Webhooks v1 headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Sender delivers webhooks over HTTP through a Guard. It implements approval.WebhookSender.
type Sender struct {
	guard  Guard
	client *http.Client
}

var _ approval.WebhookSender = (*Sender)(nil)

// NewSender returns a Sender whose every connection is checked by g. It uses no proxy from the
// environment (a proxy would make the connection, and the check, elsewhere), follows no redirect (a
// redirect could point anywhere; the receiver's answer is its 3xx, a failure), and gives up after
// Timeout.
func NewSender(g Guard) *Sender {
	dialer := &net.Dialer{Timeout: Timeout, Control: g.control}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   Timeout,
		ResponseHeaderTimeout: Timeout,
		MaxIdleConns:          50,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Sender{guard: g, client: &http.Client{
		Transport:     transport,
		Timeout:       Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// CheckURL implements approval.WebhookSender.
func (s *Sender) CheckURL(ctx context.Context, u string) error { return s.guard.CheckURL(ctx, u) }

// Send implements approval.WebhookSender: it posts m's body, signed, and succeeds on a 2xx only.
func (s *Sender) Send(ctx context.Context, m approval.WebhookMessage) error {
	// The scheme is checked again: an operator may have turned plain http off since registration.
	if err := s.guard.CheckURL(ctx, m.URL); err != nil {
		return fmt.Errorf("notification URL refused: %w", err)
	}
	sig, err := Sign(m.Secret, m.ID, m.Timestamp, m.Body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Herald-Webhooks/1")
	req.Header.Set(HeaderID, m.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(m.Timestamp.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook delivery: %w", redact(err, m.URL))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook delivery: the receiver answered %s", resp.Status)
	}
	return nil
}

// redact drops the URL from a client error: its query may carry the receiver's own secret (Power
// Automate's callback URLs do), and the error ends up in logs and in the subscription's last error.
func redact(err error, u string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return errors.New(strings.ReplaceAll(err.Error(), u, "(the notification URL)"))
}

// Sign returns the webhook-signature header of Standard Webhooks v1 for a message: "v1," and the base64
// HMAC-SHA256, keyed with the base64-decoded part of the whsec_ secret, of "id.timestamp.body".
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return "", errors.New("webhook secret is not a whsec_ secret")
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts.Unix())
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
