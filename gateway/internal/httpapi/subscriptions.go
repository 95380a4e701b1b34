package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
)

// subscriptionRequest is the body of POST /v1/subscriptions: where to deliver (the notification URL
// Power Automate fills in) and which events.
type subscriptionRequest struct {
	URL    *string  `json:"url"`
	Events []string `json:"events"`
}

// subscriptionView is a subscription as its department sees it. The secret is set only in the answer
// to its creation.
type subscriptionView struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
	// Failing says that deliveries used up their retries; the next one delivered clears it.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	Secret       string     `json:"secret,omitempty"`
}

// eventNames is the one place where the approval service's webhook events become the connector's
// strings.
var eventNames = map[approvalv1.WebhookEvent]string{
	approvalv1.WebhookEvent_WEBHOOK_EVENT_PUBLISHED: "published",
	approvalv1.WebhookEvent_WEBHOOK_EVENT_REJECTED:  "rejected",
	approvalv1.WebhookEvent_WEBHOOK_EVENT_FAILED:    "failed",
	approvalv1.WebhookEvent_WEBHOOK_EVENT_EXPIRED:   "expired",
}

func eventByName(name string) (approvalv1.WebhookEvent, bool) {
	for e, n := range eventNames {
		if n == name {
			return e, true
		}
	}
	return 0, false
}

// createSubscription subscribes the department's notification URL: 201 with Location (where the
// platform sends DELETE when the flow is deleted) and the signing secret, shown this once.
func (s *server) createSubscription(w http.ResponseWriter, r *http.Request) {
	dept, err := s.authenticate(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		s.fail(w, r, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "the body is larger than 16 KiB"})
		return
	}
	if err != nil {
		s.fail(w, r, badRequest("invalid_body", "could not read the body", ""))
		return
	}
	sr, err := decodeSubscriptionBody(body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req := &approvalv1.CreateSubscriptionRequest{DepartmentId: dept.ID, Url: *sr.URL}
	for _, name := range sr.Events {
		e, ok := eventByName(name)
		if !ok {
			s.fail(w, r, badRequest("invalid_request", fmt.Sprintf("events: %q is not one of published, rejected, failed, expired", name), "events"))
			return
		}
		req.Events = append(req.Events, e)
	}
	resp, err := s.deps.Approvals.CreateSubscription(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := toSubscriptionView(resp.GetSubscription())
	v.Secret = resp.GetSecret()
	// The URL is not logged: a platform's callback URL carries its own signature in the query.
	s.logAt(r.Context(), r, slog.LevelInfo, "webhook subscription created", "subscription_id", v.ID, "department_id", dept.ID, "events", v.Events)
	w.Header().Set("Location", s.cfg.PublicURL+"/v1/subscriptions/"+v.ID)
	writeJSON(w, http.StatusCreated, v)
}

// decodeSubscriptionBody decodes strictly, as decodePostBody does; url is required, events default to
// published (the trigger "When a post is published").
func decodeSubscriptionBody(body []byte) (subscriptionRequest, error) {
	var sr subscriptionRequest
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	if err := json.UnmarshalDecode(dec, &sr, json.RejectUnknownMembers(true)); err != nil {
		var sem *json.SemanticError
		if errors.As(err, &sem) && errors.Is(sem.Err, json.ErrUnknownName) {
			field := sem.JSONPointer.LastToken()
			return sr, badRequest("unknown_field", fmt.Sprintf("unknown field %q; the fields are url and events (names are case-sensitive)", field), field)
		}
		if errors.As(err, &sem) && sem.JSONPointer != "" {
			field := sem.JSONPointer.LastToken()
			if field != "url" {
				field = "events"
			}
			return sr, badRequest("invalid_json", "url must be a string and events an array of strings", field)
		}
		return sr, jsonError(err)
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return sr, badRequest("invalid_json", "the body must hold exactly one JSON object", "")
	}
	if sr.URL == nil || *sr.URL == "" {
		return sr, badRequest("invalid_request", "url is required: the address Herald delivers events to", "url")
	}
	if sr.Events == nil {
		sr.Events = []string{"published"}
	}
	if len(sr.Events) == 0 || len(sr.Events) > 10 {
		return sr, badRequest("invalid_request", "events must name 1 to 4 of published, rejected, failed, expired", "events")
	}
	return sr, nil
}

func (s *server) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	dept, err := s.authenticate(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp, err := s.deps.Approvals.ListSubscriptions(r.Context(), &approvalv1.ListSubscriptionsRequest{DepartmentId: dept.ID})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Subscriptions []subscriptionView `json:"subscriptions"`
	}{Subscriptions: []subscriptionView{}}
	for _, sub := range resp.GetSubscriptions() {
		out.Subscriptions = append(out.Subscriptions, toSubscriptionView(sub))
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteSubscription ends the department's own subscription: 204, or 404 for an unknown id or another
// department's.
func (s *server) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	dept, err := s.authenticate(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		s.fail(w, r, errNoSubscription)
		return
	}
	_, err = s.deps.Approvals.DeleteSubscription(r.Context(), &approvalv1.DeleteSubscriptionRequest{DepartmentId: dept.ID, SubscriptionId: id})
	if err != nil {
		if ae := toAPIError(err); ae == errNotFound {
			err = errNoSubscription
		}
		s.fail(w, r, err)
		return
	}
	s.logAt(r.Context(), r, slog.LevelInfo, "webhook subscription deleted", "subscription_id", id, "department_id", dept.ID)
	w.WriteHeader(http.StatusNoContent)
}

var errNoSubscription = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such subscription"}

func toSubscriptionView(sub *approvalv1.Subscription) subscriptionView {
	v := subscriptionView{ID: sub.GetId(), URL: sub.GetUrl(), Events: []string{}, CreatedAt: sub.GetCreatedAt().AsTime()}
	for _, e := range sub.GetEvents() {
		v.Events = append(v.Events, eventNames[e])
	}
	if sub.GetFailingSince() != nil {
		t := sub.GetFailingSince().AsTime()
		v.FailingSince = &t
	}
	return v
}
