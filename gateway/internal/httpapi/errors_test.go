package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/heraldhq/herald/gateway/internal/intake"
	"github.com/heraldhq/herald/gateway/internal/keyauth"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
)

func TestToAPIError(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"validation", &intake.ValidationError{Target: "tweet", Message: "is required"}, 400, "invalid_request"},
		{"wrapped validation", fmt.Errorf("submit: %w", &intake.ValidationError{Target: "tweet", Message: "x"}), 400, "invalid_request"},
		{"bad key", keyauth.ErrInvalidKey, 401, "unauthorized"},
		{"JetStream down", fmt.Errorf("submit p1: %w", eventbus.ErrUnavailable), 503, "unavailable"},
		{"unknown post", status.Error(codes.NotFound, "post not found"), 404, "not_found"},
		{"used link", status.Error(codes.FailedPrecondition, "this approval link was already used"), 409, "conflict"},
		{"approval service down", status.Error(codes.Unavailable, "connection refused"), 503, "unavailable"},
		{"approval service slow", status.Error(codes.DeadlineExceeded, "deadline"), 503, "unavailable"},
		{"gateway token refused", status.Error(codes.Unauthenticated, "wrong bearer token"), 500, "internal"},
		{"anything else", errors.New("disk on fire"), 500, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toAPIError(tt.err)
			if got.Status != tt.status || got.Code != tt.code || got.Message == "" {
				t.Errorf("toAPIError = %d %s %q, want %d %s", got.Status, got.Code, got.Message, tt.status, tt.code)
			}
			if got.Status == http.StatusInternalServerError && got.Message != "internal error" {
				t.Errorf("a 500 must not reveal internals: %q", got.Message)
			}
		})
	}
}

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"flow-run-7": true, "3f2a.b_c": true, "": false, "a b": false, "a\nb": false, "<script>": false,
		"0123456789012345678901234567890123456789012345678901234567890123":  true,
		"01234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		if got := validRequestID(id); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}
