// Package requestid carries the id of the request that caused some work, so that one id leads through the
// logs of every service a post passes: the gateway's HTTP handlers, the approval service's gRPC calls and
// the events on JetStream. It lives apart from those transports because all three read and write it.
package requestid

import "context"

// The names the id travels under on each transport.
const (
	// HTTPHeader is the HTTP header a caller may send and the gateway always answers with.
	HTTPHeader = "X-Request-Id"
	// MetadataKey is the gRPC metadata key (gRPC wants lower-case keys).
	MetadataKey = "x-request-id"
	// BusHeader is the NATS header on events published while handling the request.
	BusHeader = "Herald-Request-Id"
)

type key struct{}

// WithID returns ctx carrying id; an empty id leaves ctx as it is.
func WithID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, key{}, id)
}

// FromContext returns the request id ctx carries, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}
