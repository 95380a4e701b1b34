package webhook

import (
	"time"

	"github.com/heraldhq/herald/services/approval/internal/approval"
	"github.com/heraldhq/herald/services/approval/internal/grpcapi"
	"github.com/heraldhq/herald/services/heraldshared/postresult"
)

// Payload is the approval.WebhookPayload of Herald's deliveries: the Standard Webhooks envelope
// ({"type": "post.published", "timestamp", "data"}) around the post's result object, made from the same
// Post message the gateway's GET /v1/posts/{id} answers with, through the same postresult.FromProto.
func Payload(ev approval.WebhookEvent, at time.Time, p approval.Post) ([]byte, error) {
	return postresult.MarshalEvent(string(ev), at, grpcapi.PostProto(p))
}
