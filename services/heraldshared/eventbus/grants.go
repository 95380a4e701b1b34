package eventbus

import (
	"fmt"
	"strings"
)

// Service is one of Herald's identities on NATS. Each service connects with its own credentials, and
// the server lets it publish and subscribe only what GrantsFor lists, so that holding one service's
// credentials is not enough to forge another's events.
type Service string

// Herald's services.
const (
	ServiceGateway   Service = "gateway"
	ServiceApproval  Service = "approval"
	ServicePublisher Service = "publisher"
)

// Services lists every service, for configurations that grant each its own user.
func Services() []Service { return []Service{ServiceGateway, ServiceApproval, ServicePublisher} }

// SubjectKeysRevoked is a core NATS subject (not in the stream): the approval service announces there
// that an API key was revoked, and every gateway drops it from its cache at once. Losing the message only
// delays revocation to the cache's time to live; forging one only makes a gateway check a key again.
const SubjectKeysRevoked = "herald.keys.revoked"

// Publishes lists the stream subjects a service may publish events to.
func (s Service) Publishes() []string {
	switch s {
	case ServiceGateway:
		return []string{SubjectRequested}
	case ServiceApproval:
		return []string{SubjectApproved, SubjectRejected, SubjectExpired, SubjectCancelled}
	case ServicePublisher:
		return []string{SubjectPublished, SubjectFailed, SubjectUnknown}
	}
	return nil
}

// Consumes lists the stream subjects a service reads through durable consumers.
func (s Service) Consumes() []string {
	switch s {
	case ServiceApproval:
		return []string{SubjectRequested, SubjectPublished, SubjectFailed, SubjectUnknown}
	case ServicePublisher:
		return []string{SubjectApproved}
	}
	return nil
}

// ManagesStream reports whether the service creates and updates the stream. Only the approval service,
// which owns a post's life, does; the others wait for the stream to exist, so that none of their
// credentials can change its subjects, limits or retention.
func (s Service) ManagesStream() bool { return s == ServiceApproval }

// InboxPrefix is the prefix of the service's reply subjects (JetStream acknowledgements and pulled
// messages arrive there). A prefix per service keeps one service from reading another's replies, which
// a shared _INBOX.> would allow.
func (s Service) InboxPrefix() string { return "_INBOX_" + string(s) }

// ConsumerName is the name of the durable consumer that reads subject for a service whose consumers are
// named durable: one consumer per subject, because NATS servers before 2.10 refuse several filters.
func ConsumerName(durable, subject string) string {
	return durable + "-" + subject[strings.LastIndex(subject, ".")+1:]
}

// Grants are the subjects a NATS user may publish to and subscribe to.
type Grants struct {
	Publish   []string
	Subscribe []string
}

// GrantsFor returns the least privilege service needs on stream, with its durable consumers named after
// durable (empty for the gateway, which consumes nothing): its own event subjects, the JetStream API
// calls for its own stream and consumers only, acknowledgements of its own consumers' messages, and its
// own inbox. Nothing else: no other service's subjects, no stream deletion or purge, no $JS.API.>.
func GrantsFor(s Service, stream, durable string) (Grants, error) {
	if stream == "" || strings.ContainsAny(stream, ".*> ") {
		return Grants{}, fmt.Errorf("grants for %s: invalid stream name %q", s, stream)
	}
	if len(s.Consumes()) > 0 && (durable == "" || strings.ContainsAny(durable, ".*> ")) {
		return Grants{}, fmt.Errorf("grants for %s: invalid consumer name %q", s, durable)
	}
	api := "$JS.API."
	g := Grants{Subscribe: []string{s.InboxPrefix() + ".>"}}
	g.Publish = append(g.Publish, s.Publishes()...)
	g.Publish = append(g.Publish, api+"STREAM.INFO."+stream)
	// The idempotency bucket is a stream too (KV_<bucket>), with its keys under $KV.<bucket>.
	bucket := IdempotencyBucket(stream)
	kvStream := "KV_" + bucket
	rateBucket := RateBucket(stream)
	rateStream := "KV_" + rateBucket
	if s.ManagesStream() {
		g.Publish = append(g.Publish, api+"STREAM.CREATE."+stream, api+"STREAM.UPDATE."+stream,
			api+"STREAM.INFO."+kvStream, api+"STREAM.CREATE."+kvStream, api+"STREAM.UPDATE."+kvStream,
			api+"STREAM.INFO."+rateStream, api+"STREAM.CREATE."+rateStream, api+"STREAM.UPDATE."+rateStream,
			// nats.go reads the account's JetStream info (read-only: limits and usage) before it creates a
			// bucket, to pick the bucket's defaults.
			api+"INFO")
	}
	if s == ServiceGateway {
		// Bind to the bucket, read a key (direct or through the stream API), and write, swap or delete a
		// key (a publish whose acknowledgement comes back to the gateway's inbox). No purge, no deletion of
		// the bucket, no other bucket.
		g.Publish = append(g.Publish, api+"STREAM.INFO."+kvStream, api+"DIRECT.GET."+kvStream+".>",
			api+"STREAM.MSG.GET."+kvStream, "$KV."+bucket+".>")
	}
	if s == ServicePublisher {
		// The same for the shared rate-limit windows of the channel accounts.
		g.Publish = append(g.Publish, api+"STREAM.INFO."+rateStream, api+"DIRECT.GET."+rateStream+".>",
			api+"STREAM.MSG.GET."+rateStream, "$KV."+rateBucket+".>")
	}
	g.Publish = append(g.Publish, mediaGrants(s, stream)...)
	for _, subject := range s.Consumes() {
		name := ConsumerName(durable, subject)
		g.Publish = append(g.Publish,
			api+"CONSUMER.CREATE."+stream+"."+name+"."+subject,
			api+"CONSUMER.INFO."+stream+"."+name,
			api+"CONSUMER.MSG.NEXT."+stream+"."+name,
			"$JS.ACK."+stream+"."+name+".>",
		)
	}
	switch s {
	case ServiceApproval:
		g.Publish = append(g.Publish, SubjectKeysRevoked)
	case ServiceGateway:
		g.Subscribe = append(g.Subscribe, SubjectKeysRevoked)
	}
	return g, nil
}

// mediaGrants are the JetStream calls service needs on the media bucket (an object store: stream
// OBJ_<bucket>, chunks under $O.<bucket>.C.>, metadata under $O.<bucket>.M.>). Every service reads: the
// gateway for the approval page, the approval service for the email, the publisher to post. Reading an
// object binds to the bucket, reads its metadata (direct or through the stream API), and pulls its chunks
// through an ordered consumer whose flow-control replies go to $JS.FC. Only the gateway writes objects;
// only the approval service deletes them (a metadata tombstone and a purge of the object's chunks), in its
// retention sweep, and manages the bucket. The publisher writes nothing there.
func mediaGrants(s Service, stream string) []string {
	api := "$JS.API."
	bucket := MediaBucket(stream)
	objStream := "OBJ_" + bucket
	g := []string{
		api + "STREAM.INFO." + objStream,
		api + "DIRECT.GET." + objStream + ".>",
		api + "STREAM.MSG.GET." + objStream,
		api + "CONSUMER.CREATE." + objStream + ".>",
		api + "CONSUMER.DELETE." + objStream + ".>",
		"$JS.FC." + objStream + ".>",
	}
	switch s {
	case ServiceGateway:
		g = append(g, "$O."+bucket+".C.>", "$O."+bucket+".M.>")
	case ServiceApproval:
		g = append(g, api+"STREAM.CREATE."+objStream, api+"STREAM.UPDATE."+objStream,
			api+"STREAM.PURGE."+objStream, "$O."+bucket+".M.>")
	}
	return g
}
