package httpapi

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodePostBodyRefusesWhatALenientDecoderRepairs holds the body to the letter: each of these was
// once accepted and silently changed into something else.
func TestDecodePostBodyRefusesWhatALenientDecoderRepairs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		code   string // empty: accepted
		target string
	}{
		{"plain", `{"tweet":"Hi","requestedby":"jo"}`, "", ""},
		{"null and empty media", `{"tweet":"Hi","requestedby":"jo","media":[]}`, "", ""},
		{"escaped valid pair", `{"tweet":"\ud83d\udc4b","requestedby":"jo"}`, "", ""},
		{"upper-case name", `{"TWEET":"Hi","requestedby":"jo"}`, "unknown_field", "TWEET"},
		{"mixed-case name", `{"tweet":"Hi","RequestedBy":"jo"}`, "unknown_field", "RequestedBy"},
		{"repeated name", `{"tweet":"approved text","requestedby":"jo","tweet":"other text"}`, "duplicate_field", "tweet"},
		{"unknown field", `{"tweet":"Hi","requestedby":"jo","extra":1}`, "unknown_field", "extra"},
		{"invalid UTF-8", "{\"tweet\":\"a\xffb\",\"requestedby\":\"jo\"}", "invalid_json", ""},
		{"lone high surrogate", `{"tweet":"a\ud800b","requestedby":"jo"}`, "invalid_json", ""},
		{"lone low surrogate", `{"tweet":"a\udc00","requestedby":"jo"}`, "invalid_json", ""},
		{"two objects", `{"tweet":"Hi","requestedby":"jo"}{}`, "invalid_json", ""},
		{"an array", `[{"tweet":"Hi"}]`, "invalid_json", ""},
		{"tweet is a number", `{"tweet":42,"requestedby":"jo"}`, "invalid_json", "tweet"},
		{"requester is an object", `{"tweet":"Hi","requestedby":{}}`, "invalid_json", "requestedby"},
		{"cut short", `{"tweet":"Hi"`, "invalid_json", ""},
		{"empty", ``, "invalid_json", ""},
		{"a media item's unknown field", `{"tweet":"Hi","requestedby":"jo","media":[{"$content":"AA==","$Content-Type":"image/png"}]}`, "unknown_field", "$Content-Type"},
		{"a media item twice named", `{"tweet":"Hi","requestedby":"jo","media":[{"$content":"AA==","$content":"AB=="}]}`, "duplicate_field", "$content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := decodePostBody([]byte(tt.body))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("decodePostBody(%s) = %v, want it accepted", tt.body, err)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("decodePostBody(%s) = %v, want an *apiError", tt.body, err)
			}
			if ae.Status != 400 || ae.Code != tt.code || ae.Target != tt.target {
				t.Errorf("decodePostBody(%s) = %d %s target %q (%s), want 400 %s target %q", tt.body, ae.Status, ae.Code, ae.Target, ae.Message, tt.code, tt.target)
			}
			for _, goType := range []string{"*string", "jsontext", "json:", "Go "} {
				if strings.Contains(ae.Message, goType) {
					t.Errorf("message %q names Go internals (%q)", ae.Message, goType)
				}
			}
		})
	}
}
