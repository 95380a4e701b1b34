package postgres

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/store/postgres/pgdb"
)

// CreateSubscription implements approval.Store.
func (s *Store) CreateSubscription(ctx context.Context, sub approval.Subscription) error {
	return s.q.CreateSubscription(ctx, pgdb.CreateSubscriptionParams{
		ID: sub.ID, DepartmentID: sub.DepartmentID, Url: sub.URL, Events: joinEvents(sub.Events),
		Secret: sub.Secret, CreatedAt: micros(sub.CreatedAt),
	})
}

// GetSubscription implements approval.Store.
func (s *Store) GetSubscription(ctx context.Context, id string) (approval.Subscription, error) {
	r, err := s.q.GetSubscription(ctx, id)
	if err != nil {
		return approval.Subscription{}, notFound(err)
	}
	return toSubscription(r), nil
}

// ListSubscriptions implements approval.Store.
func (s *Store) ListSubscriptions(ctx context.Context, departmentID string) ([]approval.Subscription, error) {
	rows, err := s.q.ListSubscriptions(ctx, departmentID)
	return convert(rows, err, toSubscription)
}

// CountSubscriptions implements approval.Store.
func (s *Store) CountSubscriptions(ctx context.Context, departmentID string) (int, error) {
	n, err := s.q.CountSubscriptions(ctx, departmentID)
	return int(n), err
}

// DeleteSubscription implements approval.Store.
func (s *Store) DeleteSubscription(ctx context.Context, id, departmentID string) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		n, err := q.DeleteSubscription(ctx, pgdb.DeleteSubscriptionParams{ID: id, DepartmentID: departmentID})
		if err != nil {
			return err
		}
		if n == 0 {
			return approval.ErrNotFound
		}
		return q.DeleteSubscriptionDeliveries(ctx, id)
	})
}

// FanOutWebhook implements approval.Store.
func (s *Store) FanOutWebhook(ctx context.Context, outboxID int64, departmentID, postID string, ev approval.WebhookEvent, body []byte, at time.Time) (int, error) {
	n, err := s.q.FanOutWebhook(ctx, pgdb.FanOutWebhookParams{
		OutboxID: outboxID, PostID: postID, Event: string(ev), Body: string(body), CreatedAt: micros(at),
		DepartmentID: departmentID, EventPattern: "%," + string(ev) + ",%",
	})
	return int(n), err
}

// ClaimWebhookDeliveries implements approval.Store.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, now, until time.Time, limit int) ([]approval.WebhookDelivery, error) {
	rows, err := s.q.ClaimWebhookDeliveries(ctx, pgdb.ClaimWebhookDeliveriesParams{LeaseUntil: micros(until), Now: micros(now), MaxRows: int32(min(limit, 1<<30))})
	ds, err := convert(rows, err, toWebhookDelivery)
	if err != nil {
		return nil, err
	}
	// RETURNING keeps no order: hand them out oldest first.
	slices.SortFunc(ds, func(a, b approval.WebhookDelivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	return ds, nil
}

// DeleteWebhookDelivery implements approval.Store.
func (s *Store) DeleteWebhookDelivery(ctx context.Context, id int64, subscriptionID string) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		if err := q.DeleteWebhookDelivery(ctx, id); err != nil {
			return err
		}
		if subscriptionID == "" {
			return nil
		}
		return q.ClearSubscriptionFailing(ctx, subscriptionID)
	})
}

// DeferWebhookDelivery implements approval.Store.
func (s *Store) DeferWebhookDelivery(ctx context.Context, id int64, next time.Time, lastErr string) error {
	return s.q.DeferWebhookDelivery(ctx, pgdb.DeferWebhookDeliveryParams{ID: id, NextAttemptAt: micros(next), LastError: lastErr})
}

// GiveUpWebhookDelivery implements approval.Store.
func (s *Store) GiveUpWebhookDelivery(ctx context.Context, id int64, subscriptionID string, at time.Time, lastErr string) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		if err := q.DeleteWebhookDelivery(ctx, id); err != nil {
			return err
		}
		return q.MarkSubscriptionFailing(ctx, pgdb.MarkSubscriptionFailingParams{ID: subscriptionID, FailingSince: micros(at), LastError: lastErr})
	})
}

// CountWebhookDeliveries implements approval.Store.
func (s *Store) CountWebhookDeliveries(ctx context.Context) (int, error) {
	n, err := s.q.CountWebhookDeliveries(ctx)
	return int(n), err
}

// joinEvents stores events between commas, so that LIKE '%,published,%' finds a subscriber.
func joinEvents(evs []approval.WebhookEvent) string {
	var b strings.Builder
	b.WriteString(",")
	for _, e := range evs {
		b.WriteString(string(e) + ",")
	}
	return b.String()
}

func splitEvents(s string) []approval.WebhookEvent {
	var out []approval.WebhookEvent
	for _, e := range strings.Split(strings.Trim(s, ","), ",") {
		if e != "" {
			out = append(out, approval.WebhookEvent(e))
		}
	}
	return out
}

func toSubscription(r pgdb.WebhookSubscription) approval.Subscription {
	return approval.Subscription{
		ID: r.ID, DepartmentID: r.DepartmentID, URL: r.Url, Events: splitEvents(r.Events), Secret: r.Secret,
		CreatedAt: fromMicros(r.CreatedAt), FailingSince: fromMicros(r.FailingSince), LastError: r.LastError,
	}
}

func toWebhookDelivery(r pgdb.WebhookDelivery) approval.WebhookDelivery {
	return approval.WebhookDelivery{
		ID: r.ID, SubscriptionID: r.SubscriptionID, PostID: r.PostID, Event: approval.WebhookEvent(r.Event), Body: []byte(r.Body),
		CreatedAt: fromMicros(r.CreatedAt), Attempts: int(r.Attempts), NextAttemptAt: fromMicros(r.NextAttemptAt), LastError: r.LastError,
	}
}
