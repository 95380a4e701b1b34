package keyauth

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

// Listen subscribes to the approval service's revocation announcements (eventbus.SubjectKeysRevoked, core
// NATS) and evicts each announced key from a's cache, so that a revoked key is refused within moments
// instead of at the end of the TTL. The announcement is not authenticated, and needs not be: all it can do
// is evict, and an evicted key is checked again with the approval service, which alone grants anything.
// A message lost (the gateway disconnected, say) leaves the key valid here until the TTL ends. Undecodable
// messages are logged and ignored. The caller unsubscribes, or closes nc, to stop.
func (a *Authenticator) Listen(nc *nats.Conn, log *slog.Logger) (*nats.Subscription, error) {
	if nc == nil || log == nil {
		return nil, errors.New("keyauth: nil NATS connection or logger")
	}
	sub, err := nc.Subscribe(eventbus.SubjectKeysRevoked, func(m *nats.Msg) {
		var ev eventsv1.KeyRevoked
		if err := proto.Unmarshal(m.Data, &ev); err != nil || ev.GetKeyId() == "" {
			log.Warn("ignored an undecodable key revocation", "subject", m.Subject, "bytes", len(m.Data), "err", err)
			return
		}
		a.Evict(ev.GetKeyId())
		log.Info("api key revoked; evicted from the key cache", "key_id", ev.GetKeyId(), "department_id", ev.GetDepartmentId())
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", eventbus.SubjectKeysRevoked, err)
	}
	// Flush so that the server knows of the subscription before Listen returns: a revocation announced
	// right after reaches this gateway.
	if err := nc.Flush(); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to %s: %w", eventbus.SubjectKeysRevoked, err)
	}
	return sub, nil
}
