package intake_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald/gateway/internal/intake"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		req    intake.Request
		target string // empty: valid
	}{
		{"plain", intake.Request{Tweet: "Hello", RequestedBy: "jo"}, ""},
		{"280 characters, multibyte", intake.Request{Tweet: strings.Repeat("é", 280), RequestedBy: "jo"}, ""},
		{"140 emoji weigh 280", intake.Request{Tweet: strings.Repeat("👋", 140), RequestedBy: "jo"}, ""},
		{"141 emoji weigh 282", intake.Request{Tweet: strings.Repeat("👋", 141), RequestedBy: "jo"}, "tweet"},
		{"141 CJK characters weigh 282", intake.Request{Tweet: strings.Repeat("字", 141), RequestedBy: "jo"}, "tweet"},
		{"a long URL counts 23", intake.Request{Tweet: strings.Repeat("a", 250) + " https://example.com/" + strings.Repeat("p", 100), RequestedBy: "jo"}, ""},
		{"281 characters", intake.Request{Tweet: strings.Repeat("a", 281), RequestedBy: "jo"}, "tweet"},
		{"empty tweet", intake.Request{Tweet: "", RequestedBy: "jo"}, "tweet"},
		{"blank tweet", intake.Request{Tweet: " \n\t", RequestedBy: "jo"}, "tweet"},
		{"invalid UTF-8", intake.Request{Tweet: "a\xffb", RequestedBy: "jo"}, "tweet"},
		{"newlines, tabs and windows line ends", intake.Request{Tweet: "Line one\n\tLine two\r\nthree", RequestedBy: "jo"}, ""},
		{"NUL in the tweet", intake.Request{Tweet: "a\x00b", RequestedBy: "jo"}, "tweet"},
		{"escape sequence in the tweet", intake.Request{Tweet: "\x1b[2Jhi", RequestedBy: "jo"}, "tweet"},
		{"C1 control in the tweet", intake.Request{Tweet: "a\u0085b", RequestedBy: "jo"}, "tweet"},
		{"bare carriage return in the tweet", intake.Request{Tweet: "a\rb", RequestedBy: "jo"}, "tweet"},
		{"right-to-left override in the tweet", intake.Request{Tweet: "Invoice \u202Efdp.exe", RequestedBy: "jo"}, "tweet"},
		{"no requester", intake.Request{Tweet: "Hello"}, "requestedby"},
		{"CR LF in the requester", intake.Request{Tweet: "Hello", RequestedBy: "jo\r\nBcc: x@evil.example"}, "requestedby"},
		{"tab in the requester", intake.Request{Tweet: "Hello", RequestedBy: "jo\tsmith"}, "requestedby"},
		{"isolate in the requester", intake.Request{Tweet: "Hello", RequestedBy: "\u2067jo"}, "requestedby"},
		{"invalid UTF-8 in the requester", intake.Request{Tweet: "Hello", RequestedBy: "j\xffo"}, "requestedby"},
		{"long requester", intake.Request{Tweet: "Hello", RequestedBy: strings.Repeat("j", 201)}, "requestedby"},
		{"idempotency key", intake.Request{Tweet: "Hello", RequestedBy: "jo", IdempotencyKey: "flow-run-42"}, ""},
		{"idempotency key with a newline", intake.Request{Tweet: "Hello", RequestedBy: "jo", IdempotencyKey: "a\nb"}, "Idempotency-Key"},
		{"idempotency key too long", intake.Request{Tweet: "Hello", RequestedBy: "jo", IdempotencyKey: strings.Repeat("k", 256)}, "Idempotency-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := intake.Validate(tt.req)
			var ve *intake.ValidationError
			switch {
			case tt.target == "" && err != nil:
				t.Fatalf("Validate = %v, want valid", err)
			case tt.target != "" && (!errors.As(err, &ve) || ve.Target != tt.target || ve.Message == ""):
				t.Fatalf("Validate = %v, want a ValidationError for %s", err, tt.target)
			}
		})
	}
}

func TestPostID(t *testing.T) {
	a := intake.PostID("dept-a", "run-1")
	if a != intake.PostID("dept-a", "run-1") {
		t.Error("the same department and Idempotency-Key must always name the same post")
	}
	if a == intake.PostID("dept-b", "run-1") {
		t.Error("another department's identical key must name another post")
	}
	if intake.PostID("dept-a", "") == intake.PostID("dept-a", "") {
		t.Error("requests without a key must get fresh ids")
	}
}

// TestValidateTellsTheCountedLength checks that the error gives the weighted length X would count, so
// that a department can see by how much to shorten.
func TestValidateTellsTheCountedLength(t *testing.T) {
	err := intake.Validate(intake.Request{Tweet: strings.Repeat("字", 141), RequestedBy: "jo"})
	var ve *intake.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.Message, "is 282 characters long as X counts them") || !strings.Contains(ve.Message, "at most 280") {
		t.Fatalf("Validate = %v, want the counted length 282 and the limit", err)
	}
}
