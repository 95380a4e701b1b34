// Package events feeds the approval service from JetStream: new post requests from the gateway and
// outcomes from the publisher.
package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

// Subjects are the subjects the approval service consumes.
var Subjects = []string{eventbus.SubjectRequested, eventbus.SubjectPublished, eventbus.SubjectFailed, eventbus.SubjectUnknown}

// Handler returns the message handler that applies each event to svc.
func Handler(svc *approval.Service) eventbus.Handler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		var err error
		switch msg.Subject() {
		case eventbus.SubjectRequested:
			err = apply(msg.Data(), &eventsv1.PostRequested{}, func(ev *eventsv1.PostRequested) error { return svc.Submit(ctx, ev) })
		case eventbus.SubjectPublished:
			err = apply(msg.Data(), &eventsv1.PostPublished{}, func(ev *eventsv1.PostPublished) error { return svc.RecordPublished(ctx, ev) })
		case eventbus.SubjectFailed:
			err = apply(msg.Data(), &eventsv1.PostFailed{}, func(ev *eventsv1.PostFailed) error { return svc.RecordFailed(ctx, ev) })
		case eventbus.SubjectUnknown:
			err = apply(msg.Data(), &eventsv1.PostUnknown{}, func(ev *eventsv1.PostUnknown) error { return svc.RecordUnknown(ctx, ev) })
		default:
			return eventbus.Permanent(fmt.Errorf("unexpected subject %q", msg.Subject()))
		}
		if errors.Is(err, approval.ErrInvalid) || errors.Is(err, approval.ErrNotFound) {
			return eventbus.Permanent(err)
		}
		return err
	}
}

func apply[M proto.Message](data []byte, m M, fn func(M) error) error {
	if err := proto.Unmarshal(data, m); err != nil {
		return eventbus.Permanent(fmt.Errorf("decode %T: %w", m, err))
	}
	return fn(m)
}
