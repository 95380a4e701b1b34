package approval

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// WebhookEvent is what happened to a post that a webhook subscription can be told about.
type WebhookEvent string

// The events a subscription may ask for. Each is a final state of a post, as the department sees it.
const (
	EventPublished WebhookEvent = "published"
	EventRejected  WebhookEvent = "rejected"
	EventFailed    WebhookEvent = "failed"
	EventExpired   WebhookEvent = "expired"
)

// WebhookEvents are every event, in the order they are listed.
var WebhookEvents = []WebhookEvent{EventPublished, EventRejected, EventFailed, EventExpired}

// webhookSecretPrefix marks a Standard Webhooks signing secret; the rest is its key, base64.
const webhookSecretPrefix = "whsec_"

// MaxSubscriptions is how many webhook subscriptions a department may hold: enough for every flow a
// department runs, few enough that one department cannot make the service call out without end.
const MaxSubscriptions = 25

// Subscription is a department's webhook subscription: where to deliver which events.
type Subscription struct {
	ID           string
	DepartmentID string
	URL          string
	Events       []WebhookEvent
	// Secret is the whsec_ signing secret. It is kept (deliveries are signed with it) and returned to the
	// department once, when the subscription is created; nothing else hands it out.
	Secret       string
	CreatedAt    time.Time
	FailingSince time.Time // zero while deliveries succeed
	LastError    string
}

// WebhookDelivery is one event on its way to one subscription.
type WebhookDelivery struct {
	ID             int64
	SubscriptionID string
	PostID         string
	Event          WebhookEvent
	// Body is the JSON delivered, made once when the event was fanned out, so that every attempt sends
	// the same body under the same message id.
	Body          []byte
	CreatedAt     time.Time
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
}

// MessageID is the delivery's webhook-id: the same on every attempt, so a receiver can drop repeats.
func (d WebhookDelivery) MessageID() string {
	return fmt.Sprintf("msg_%s_%d", strings.ReplaceAll(d.PostID, "-", ""), d.ID)
}

// WebhookMessage is what a WebhookSender sends: signed with Secret, to URL.
type WebhookMessage struct {
	URL       string
	Secret    string
	ID        string
	Timestamp time.Time
	Body      []byte
}

// WebhookSender checks notification URLs and delivers messages to them. The adapter (internal/webhook)
// guards against server-side request forgery in both.
type WebhookSender interface {
	// CheckURL says why Herald will not call u, or nil.
	CheckURL(ctx context.Context, u string) error
	// Send delivers m; nil only for a 2xx answer.
	Send(ctx context.Context, m WebhookMessage) error
}

// WebhookPayload renders the body of a delivery of event about p at at: the connector's result object
// of the post, in the Standard Webhooks envelope.
type WebhookPayload func(event WebhookEvent, at time.Time, p Post) ([]byte, error)

// WebhookResult is how one delivery attempt ended, as the metrics count it.
type WebhookResult string

// The results of an attempt.
const (
	WebhookDelivered WebhookResult = "delivered"
	WebhookRetry     WebhookResult = "retry"
	WebhookGaveUp    WebhookResult = "gave_up"
)

// WebhookConfig enables webhook subscriptions and their deliveries.
type WebhookConfig struct {
	Sender  WebhookSender
	Payload WebhookPayload
	// MaxAttempts is how often a delivery is tried before it is given up and its subscription marked
	// failing; zero means DefaultWebhookAttempts.
	MaxAttempts int
	// Observe, if set, is told the result of every attempt (metrics).
	Observe func(WebhookResult)
}

// DefaultWebhookAttempts is how often a delivery is tried by default: with the backoff of
// webhookRetryDelay the last try comes ten to fourteen hours after the first, which rides out a
// receiver's outage of a night.
const DefaultWebhookAttempts = 10

// webhookEventOf returns the event a post's status is, if any.
func webhookEventOf(s Status) (WebhookEvent, bool) {
	switch s {
	case StatusPublished:
		return EventPublished, true
	case StatusRejected:
		return EventRejected, true
	case StatusFailed:
		return EventFailed, true
	case StatusExpired:
		return EventExpired, true
	}
	return "", false
}

// webhookItems returns the outbox item that fans the event of status out to the department's
// subscribers, written in the transaction that moves the post to status; none when webhooks are off or
// the status is no event.
func (s *Service) webhookItems(status Status, postID string, now time.Time) []OutboxItem {
	ev, ok := webhookEventOf(status)
	if s.cfg.Webhooks == nil || !ok {
		return nil
	}
	return []OutboxItem{{Kind: webhookKind(ev), PostID: postID, CreatedAt: now, NextAttemptAt: now}}
}

// webhookKindPrefix starts the kind of an outbox item that fans an event out; the event follows.
const webhookKindPrefix = "webhook_"

func webhookKind(ev WebhookEvent) OutboxKind { return OutboxKind(webhookKindPrefix + string(ev)) }

// webhookEventOfKind returns the event an outbox item of kind fans out, if it is such an item.
func webhookEventOfKind(kind OutboxKind) (WebhookEvent, bool) {
	ev, ok := strings.CutPrefix(string(kind), webhookKindPrefix)
	if !ok || !slices.Contains(WebhookEvents, WebhookEvent(ev)) {
		return "", false
	}
	return WebhookEvent(ev), true
}

// CreateSubscription subscribes departmentID's notification URL to events. It returns the subscription
// and its signing secret, which no later call returns.
func (s *Service) CreateSubscription(ctx context.Context, departmentID, rawURL string, events []WebhookEvent) (Subscription, string, error) {
	wh := s.cfg.Webhooks
	if wh == nil {
		return Subscription{}, "", ErrWebhooksOff
	}
	if departmentID == "" {
		return Subscription{}, "", invalid("department_id is required")
	}
	if _, err := s.store.GetDepartment(ctx, departmentID); err != nil {
		return Subscription{}, "", fmt.Errorf("department %q: %w", departmentID, err)
	}
	evs, err := checkEvents(events)
	if err != nil {
		return Subscription{}, "", err
	}
	u, err := checkNotificationURL(rawURL)
	if err != nil {
		return Subscription{}, "", err
	}
	if err := wh.Sender.CheckURL(ctx, u); err != nil {
		return Subscription{}, "", invalid("the notification URL is refused: %v", err)
	}
	n, err := s.store.CountSubscriptions(ctx, departmentID)
	if err != nil {
		return Subscription{}, "", fmt.Errorf("count subscriptions: %w", err)
	}
	if n >= MaxSubscriptions {
		return Subscription{}, "", invalid("the department already has %d subscriptions, the most it may hold; delete one first", n)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails on supported platforms
	sub := Subscription{
		ID: uuid.NewString(), DepartmentID: departmentID, URL: u, Events: evs,
		Secret: webhookSecretPrefix + base64.StdEncoding.EncodeToString(key), CreatedAt: s.now(),
	}
	if err := s.store.CreateSubscription(ctx, sub); err != nil {
		return Subscription{}, "", fmt.Errorf("create subscription: %w", err)
	}
	s.log.InfoContext(ctx, "webhook subscription created", "subscription_id", sub.ID, "department_id", departmentID, "events", evs)
	secret := sub.Secret
	sub.Secret = ""
	return sub, secret, nil
}

// checkEvents returns the wanted events deduplicated in their usual order; at least one is required.
func checkEvents(events []WebhookEvent) ([]WebhookEvent, error) {
	if len(events) == 0 {
		return nil, invalid("events: name at least one of published, rejected, failed, expired")
	}
	var out []WebhookEvent
	for _, want := range WebhookEvents {
		if slices.Contains(events, want) {
			out = append(out, want)
		}
	}
	for _, e := range events {
		if !slices.Contains(WebhookEvents, e) {
			return nil, invalid("events: %q is not one of published, rejected, failed, expired", e)
		}
	}
	return out, nil
}

// checkNotificationURL holds a notification URL to what a webhook needs: absolute http(s), a host, no
// user information (it would be a credential in the database and the logs), no fragment. Which schemes
// and addresses are allowed is the WebhookSender's to say.
func checkNotificationURL(raw string) (string, error) {
	if raw == "" || len(raw) > 2000 {
		return "", invalid("the notification URL must be 1 to 2000 characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", invalid("the notification URL does not parse")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "", invalid("the notification URL must be https")
	case u.Host == "" || u.Hostname() == "":
		return "", invalid("the notification URL has no host")
	case u.User != nil:
		return "", invalid("the notification URL must not carry a user name or password")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", invalid("the notification URL must not have a fragment")
	}
	for _, c := range raw {
		if c <= ' ' || c == 0x7f {
			return "", invalid("the notification URL must not contain spaces or control characters")
		}
	}
	return u.String(), nil
}

// ListSubscriptions lists a department's subscriptions (every department's with departmentID empty),
// without their secrets. failingOnly keeps those whose deliveries are failing.
func (s *Service) ListSubscriptions(ctx context.Context, departmentID string, failingOnly bool) ([]Subscription, error) {
	subs, err := s.store.ListSubscriptions(ctx, departmentID)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	out := subs[:0]
	for _, sub := range subs {
		sub.Secret = ""
		if failingOnly && sub.FailingSince.IsZero() {
			continue
		}
		out = append(out, sub)
	}
	return out, nil
}

// DeleteSubscription ends a subscription and drops what it still had to deliver. With departmentID set
// (the department, through the gateway) another department's subscription is ErrNotFound.
func (s *Service) DeleteSubscription(ctx context.Context, id, departmentID string) error {
	if err := s.store.DeleteSubscription(ctx, id, departmentID); err != nil {
		return fmt.Errorf("delete subscription %s: %w", id, err)
	}
	s.log.InfoContext(ctx, "webhook subscription deleted", "subscription_id", id, "department_id", departmentID)
	return nil
}

// CountWebhookDeliveries counts the deliveries waiting to go out (every replica's, in the database).
func (s *Service) CountWebhookDeliveries(ctx context.Context) (int, error) {
	return s.store.CountWebhookDeliveries(ctx)
}

// fanOutWebhook turns an outbox item for the event ev into one delivery per subscriber that wants it,
// with the body made now from the post (the same body the polling endpoint shows). A post that moved on
// meanwhile (failed, then published after a retry) is announced by the item of its new state only, so
// that a delivery's event and body always agree.
func (s *Service) fanOutWebhook(ctx context.Context, it OutboxItem, ev WebhookEvent) error {
	wh := s.cfg.Webhooks
	if wh == nil {
		return nil
	}
	p, err := s.store.GetPost(ctx, it.PostID)
	if err != nil {
		return fmt.Errorf("webhook fan-out for %s: %w", it.PostID, err)
	}
	if p, err = s.withDecisions(ctx, p); err != nil {
		return err
	}
	if cur, _ := webhookEventOf(p.Status); cur != ev {
		return nil
	}
	now := s.now()
	body, err := wh.Payload(ev, now, p)
	if err != nil {
		return fmt.Errorf("webhook body for %s: %w", it.PostID, err)
	}
	n, err := s.store.FanOutWebhook(ctx, it.ID, p.DepartmentID, p.ID, ev, body, now)
	if err != nil {
		return fmt.Errorf("webhook fan-out for %s: %w", it.PostID, err)
	}
	if n > 0 {
		s.log.InfoContext(ctx, "webhook deliveries queued", "post_id", p.ID, "event", ev, "deliveries", n)
		s.WakeWebhooks()
	}
	return nil
}

// WakeWebhooks asks the webhook loop to look for deliveries now rather than at its next tick.
func (s *Service) WakeWebhooks() {
	select {
	case s.wakeHooks <- struct{}{}:
	default:
	}
}

// RunWebhooks delivers webhooks until ctx ends. It runs beside RunOutbox rather than inside it, so that a
// receiver that times out delays other receivers, never an approval email.
func (s *Service) RunWebhooks(ctx context.Context, poll time.Duration) error {
	if s.cfg.Webhooks == nil {
		return nil
	}
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if err := s.DrainWebhooks(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "webhook deliveries", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wakeHooks:
		}
	}
}

// DrainWebhooks makes every webhook delivery that is due now, once. Deliveries are claimed (leased for
// cfg.OutboxLease) first, so that replicas share them and each goes out once; a replica that dies
// mid-delivery leaves its claim to run out, and another sends it then.
func (s *Service) DrainWebhooks(ctx context.Context) error {
	wh := s.cfg.Webhooks
	if wh == nil {
		return nil
	}
	for {
		now := s.now()
		// Ten a lease, one after another: each may take the 15-second timeout, and ten end well inside it.
		ds, err := s.store.ClaimWebhookDeliveries(ctx, now, now.Add(s.cfg.OutboxLease), 10)
		if err != nil {
			return fmt.Errorf("claim webhook deliveries: %w", err)
		}
		if len(ds) == 0 {
			return nil
		}
		for _, d := range ds {
			if err := s.deliverWebhook(ctx, d); err != nil {
				return err
			}
		}
	}
}

// deliverWebhook makes one attempt at d and records how it went. Only a failure to record is returned.
func (s *Service) deliverWebhook(ctx context.Context, d WebhookDelivery) error {
	wh := s.cfg.Webhooks
	sub, err := s.store.GetSubscription(ctx, d.SubscriptionID)
	if errors.Is(err, ErrNotFound) {
		// Unsubscribed while this was claimed: nothing to send.
		return s.store.DeleteWebhookDelivery(ctx, d.ID, "")
	}
	if err != nil {
		return fmt.Errorf("webhook delivery %d: %w", d.ID, err)
	}
	sendErr := wh.Sender.Send(ctx, WebhookMessage{URL: sub.URL, Secret: sub.Secret, ID: d.MessageID(), Timestamp: s.now(), Body: d.Body})
	if ctx.Err() != nil {
		return ctx.Err() // stopping: the lease runs out and the delivery is tried again
	}
	log := s.log.With("subscription_id", sub.ID, "post_id", d.PostID, "event", d.Event, "webhook_id", d.MessageID(), "attempt", d.Attempts+1)
	if sendErr == nil {
		s.observe(WebhookDelivered)
		log.InfoContext(ctx, "webhook delivered")
		return s.store.DeleteWebhookDelivery(ctx, d.ID, sub.ID)
	}
	if d.Attempts+1 >= s.webhookAttempts() {
		s.observe(WebhookGaveUp)
		log.WarnContext(ctx, "webhook delivery given up; the subscription is marked failing", "err", sendErr)
		return s.store.GiveUpWebhookDelivery(ctx, d.ID, sub.ID, s.now(), sendErr.Error())
	}
	s.observe(WebhookRetry)
	next := s.now().Add(webhookRetryDelay(d.Attempts + 1))
	log.InfoContext(ctx, "webhook delivery failed; will retry", "next_attempt", next, "err", sendErr)
	return s.store.DeferWebhookDelivery(ctx, d.ID, next, sendErr.Error())
}

func (s *Service) observe(r WebhookResult) {
	if o := s.cfg.Webhooks.Observe; o != nil {
		o(r)
	}
}

func (s *Service) webhookAttempts() int {
	if n := s.cfg.Webhooks.MaxAttempts; n > 0 {
		return n
	}
	return DefaultWebhookAttempts
}

// webhookRetryDelay is the wait before the nth retry: five seconds times four to the n-1, capped at four
// hours, with full jitter on its upper half so that deliveries that failed together (a receiver's
// outage) do not all come back at once.
func webhookRetryDelay(n int) time.Duration {
	d := 5 * time.Second * time.Duration(math.Pow(4, float64(min(max(n-1, 0), 10))))
	d = min(d, 4*time.Hour)
	return d/2 + time.Duration(mathrand.Int64N(int64(d/2)+1))
}
