package httpapi_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/heraldhq/herald/gateway/internal/connector"
)

// TestOpenAPIServed checks that /openapi.json is the connector package's definition for the public
// URL, served without a key (platforms import it before anyone has one).
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	e := setup(t, options{publicURL: "https://herald.contoso.com/"})
	resp := e.serve(t, "GET", "/openapi.json", nil, "")
	got, _ := io.ReadAll(resp.Body)
	want, err := connector.Definition("https://herald.contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("answer %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("served definition differs (-want +got):\n%s", diff)
	}
}

// TestLocationIsAbsolute checks the asynchronous pattern's Location: absolute, from the public URL,
// as Logic Apps requires, on the first 202 and on every poll.
func TestLocationIsAbsolute(t *testing.T) {
	t.Parallel()
	e := setup(t, options{publicURL: "https://herald.contoso.com/"})
	resp := e.serve(t, "POST", "/v1/posts", hdr("X-API-Key", hrKey, "Content-Type", "application/json"), `{"tweet": "Hello", "requestedby": "jo"}`)
	var body struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	want := "https://herald.contoso.com/v1/posts/" + body.ID
	if resp.StatusCode != 202 || resp.Header.Get("Location") != want {
		t.Fatalf("answer %d, Location %q, want 202 and %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	poll := e.serve(t, "GET", strings.TrimPrefix(want, "https://herald.contoso.com"), hdr("X-API-Key", hrKey), "")
	if poll.StatusCode != 202 || poll.Header.Get("Location") != want {
		t.Errorf("poll %d, Location %q, want 202 and %q", poll.StatusCode, poll.Header.Get("Location"), want)
	}
}
