package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/heraldhq/herald/gateway/internal/idempotency"
	"github.com/heraldhq/herald/gateway/internal/intake"
	"github.com/heraldhq/herald/gateway/internal/keyauth"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/media"
)

// apiError is an error with the HTTP answer it deserves.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
	// retryAfter, when set, is sent as Retry-After.
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.Message }

func badRequest(code, message, target string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: message, Target: target}
}

var errNotFound = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such post"}

// toAPIError maps every error the handlers meet to an HTTP status and code. It is the only place that
// does; anything it does not recognise is a 500 whose details stay in the log.
func toAPIError(err error) *apiError {
	var ae *apiError
	var ve *intake.ValidationError
	var te *keyauth.ThrottledError
	var me *media.CheckError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &me):
		// A picture's problem, naming the picture: a type X does not take is 415, too many bytes 413,
		// anything else (bytes that are not what they say, too many pictures, a GIF beside others) 400.
		target := fmt.Sprintf("media[%d]", me.Index)
		switch me.Problem {
		case media.Unsupported:
			return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: me.Error(), Target: target}
		case media.TooLarge:
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: me.Error(), Target: target}
		default:
			return badRequest("invalid_media", me.Error(), target)
		}
	case errors.As(err, &ve):
		return badRequest("invalid_request", ve.Target+" "+ve.Message, ve.Target)
	case errors.As(err, &te):
		return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_requests",
			Message: "too many invalid API keys from this address; wait before trying again", retryAfter: te.RetryAfter}
	case errors.Is(err, keyauth.ErrInvalidKey):
		return &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "the API key is not valid (unknown or revoked)"}
	case errors.Is(err, idempotency.ErrMismatch):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused",
			Message: "this Idempotency-Key was already used for a different tweet", Target: "Idempotency-Key"}
	case errors.Is(err, idempotency.ErrInFlight):
		// Stripe's answer to a retry racing the original: try again shortly, by then it is settled.
		return &apiError{Status: http.StatusConflict, Code: "idempotency_key_in_use", Target: "Idempotency-Key", retryAfter: time.Second,
			Message: "a request with this Idempotency-Key is still being processed; retry in a moment for its answer"}
	case errors.Is(err, eventbus.ErrUnavailable), errors.Is(err, idempotency.ErrUnavailable):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "Herald cannot accept posts right now; nothing was queued. Retry later."}
	}
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied:
		// PERMISSION_DENIED: the post is another department's, which to this department is no post at all.
		return errNotFound
	case codes.FailedPrecondition:
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: status.Convert(err).Message()}
	case codes.InvalidArgument:
		return badRequest("invalid_request", status.Convert(err).Message(), "")
	case codes.Unimplemented:
		return &apiError{Status: http.StatusNotImplemented, Code: "not_implemented", Message: status.Convert(err).Message()}
	case codes.Unavailable, codes.DeadlineExceeded:
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "Herald's approval service is unavailable. Retry later."}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
