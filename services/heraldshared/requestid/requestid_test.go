package requestid_test

import (
	"context"
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/requestid"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if got := requestid.FromContext(ctx); got != "" {
		t.Errorf("FromContext(empty) = %q, want \"\"", got)
	}
	ctx = requestid.WithID(ctx, "abc123")
	if got := requestid.FromContext(ctx); got != "abc123" {
		t.Errorf("FromContext = %q, want abc123", got)
	}
	if got := requestid.FromContext(requestid.WithID(ctx, "")); got != "abc123" {
		t.Errorf("an empty id replaced the one ctx carried: %q", got)
	}
}
