package xsandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dghubble/oauth1"

	"github.com/heraldhq/herald/services/publisher/xsandbox"
)

// signed is an OAuth 1.0a client of the sandbox, as the publisher's client signs.
func signed(t *testing.T) (*http.Client, string, *xsandbox.Sandbox) {
	t.Helper()
	sb, err := xsandbox.New(xsandbox.Config{ConsumerKey: "ck", ConsumerSecret: "cs", AccessToken: "at", AccessTokenSecret: "ats"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	return oauth1.NewConfig("ck", "cs").Client(context.Background(), oauth1.NewToken("at", "ats")), srv.URL, sb
}

func call(t *testing.T, c *http.Client, method, url, contentType string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func appendSegment(t *testing.T, c *http.Client, base, id string, seg int, data []byte) (int, string) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("segment_index", string(rune('0'+seg)))
	part, _ := w.CreateFormFile("media", "chunk")
	_, _ = part.Write(data)
	_ = w.Close()
	return call(t, c, "POST", base+"/2/media/upload/"+id+"/append", w.FormDataContentType(), body.Bytes())
}

func initialize(t *testing.T, c *http.Client, base, mediaType string, total int) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"media_type": mediaType, "total_bytes": total, "media_category": "tweet_image"})
	status, body := call(t, c, "POST", base+"/2/media/upload/initialize", "application/json", b)
	var ans struct{ Data struct{ ID string } }
	_ = json.Unmarshal([]byte(body), &ans)
	if status != 200 || ans.Data.ID == "" {
		t.Fatalf("initialize: %d %s", status, body)
	}
	return ans.Data.ID
}

// TestMediaUploadAnswersLikeX checks the sandbox's refusals, which the publisher's client must turn into
// the right outcome: an unsigned call, a type or size X does not take, segments that do not add up, bytes
// that are not the declared type, and a post naming media ids that are not finalized uploads.
func TestMediaUploadAnswersLikeX(t *testing.T) {
	t.Parallel()
	c, base, sb := signed(t)
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRpicture")

	if status, _ := call(t, http.DefaultClient, "POST", base+"/2/media/upload/initialize", "application/json", []byte(`{"media_type":"image/png","total_bytes":10,"media_category":"tweet_image"}`)); status != 401 {
		t.Errorf("unsigned initialize: %d, want 401", status)
	}
	for name, body := range map[string]string{
		"svg":          `{"media_type":"image/svg+xml","total_bytes":10,"media_category":"tweet_image"}`,
		"too large":    `{"media_type":"image/png","total_bytes":5242881,"media_category":"tweet_image"}`,
		"no category":  `{"media_type":"image/png","total_bytes":10}`,
		"not JSON":     `media_type=image/png`,
		"zero bytes":   `{"media_type":"image/png","total_bytes":0,"media_category":"tweet_image"}`,
		"video in GIF": `{"media_type":"video/mp4","total_bytes":10,"media_category":"tweet_gif"}`,
	} {
		if status, got := call(t, c, "POST", base+"/2/media/upload/initialize", "application/json", []byte(body)); status != 400 || !strings.Contains(got, "Invalid Request") {
			t.Errorf("initialize %s: %d %s, want 400 Invalid Request", name, status, got)
		}
	}

	short := initialize(t, c, base, "image/png", len(png)+5)
	if status, _ := appendSegment(t, c, base, short, 0, png); status != 200 {
		t.Fatalf("append: %d", status)
	}
	if status, got := call(t, c, "POST", base+"/2/media/upload/"+short+"/finalize", "", nil); status != 400 || !strings.Contains(got, "File size mismatch") {
		t.Errorf("finalize with bytes missing: %d %s", status, got)
	}
	liar := initialize(t, c, base, "image/jpeg", len(png))
	appendSegment(t, c, base, liar, 0, png)
	if status, got := call(t, c, "POST", base+"/2/media/upload/"+liar+"/finalize", "", nil); status != 400 || !strings.Contains(got, "InvalidMedia") {
		t.Errorf("finalize of a PNG declared JPEG: %d %s", status, got)
	}
	if status, _ := appendSegment(t, c, base, "123", 0, png); status != 400 {
		t.Errorf("append to an unknown media id: %d, want 400", status)
	}

	good := initialize(t, c, base, "image/png", len(png))
	appendSegment(t, c, base, good, 0, png[:5])
	appendSegment(t, c, base, good, 1, png[5:])
	// Not finalized yet: X refuses the id in a post.
	post := func(ids ...string) (int, string) {
		b, _ := json.Marshal(map[string]any{"text": "Pictured " + strings.Join(ids, ","), "media": map[string]any{"media_ids": ids}})
		return call(t, c, "POST", base+"/2/tweets", "application/json", b)
	}
	if status, got := post(good); status != 400 || !strings.Contains(got, "Your media IDs are invalid.") {
		t.Errorf("post with an unfinalized upload: %d %s", status, got)
	}
	if status, got := call(t, c, "POST", base+"/2/media/upload/"+good+"/finalize", "", nil); status != 200 || strings.Contains(got, "processing_info") {
		t.Fatalf("finalize: %d %s", status, got)
	}
	if status, _ := post(good, good, good, good, good); status != 400 {
		t.Errorf("a post with five media ids: %d, want 400", status)
	}
	if status, got := post(good); status != 201 {
		t.Fatalf("post: %d %s", status, got)
	}
	tw := sb.Tweets()
	if len(tw) != 1 || len(tw[0].Media) != 1 || tw[0].Media[0] != good || !strings.Contains(tw[0].XText, "https://t.co/") {
		t.Errorf("the timeline holds %+v", tw)
	}
}
