package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	approvalv1 "github.com/heraldhq/herald/proto/herald/approval/v1"
	eventsv1 "github.com/heraldhq/herald/proto/herald/events/v1"
	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/media"
)

// Picture headers that http.DetectContentType recognises, padded to look like files.
var (
	pngBytes  = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{1}, 64)...)
	jpegBytes = append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), bytes.Repeat([]byte{2}, 64)...)
	gifBytes  = append([]byte("GIF89a\x01\x00\x01\x00"), bytes.Repeat([]byte{3}, 64)...)
	webpBytes = append([]byte("RIFF\x24\x00\x00\x00WEBPVP8 "), bytes.Repeat([]byte{4}, 64)...)
)

type pic struct {
	ct   string
	data []byte
}

func mediaBody(tweet string, pics ...pic) string {
	items := make([]map[string]string, len(pics))
	for i, p := range pics {
		items[i] = map[string]string{"$content-type": p.ct, "$content": base64.StdEncoding.EncodeToString(p.data)}
	}
	b, _ := json.Marshal(map[string]any{"tweet": tweet, "requestedby": "jo", "media": items})
	return string(b)
}

func lastRequest(t *testing.T, e *env) *eventsv1.PostRequested {
	t.Helper()
	stream, err := e.js.Stream(context.Background(), eventbus.Stream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), eventbus.SubjectRequested)
	if err != nil {
		t.Fatalf("nothing queued: %v", err)
	}
	var ev eventsv1.PostRequested
	if err := proto.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatal(err)
	}
	return &ev
}

// TestPostWithMediaStoresThePicturesAndQueuesTheirHashes checks the accepted path: the bytes are in the
// bucket under the post's names, the event names them with their hashes and carries no bytes.
func TestPostWithMediaStoresThePicturesAndQueuesTheirHashes(t *testing.T) {
	t.Parallel()
	e := setup(t, options{maxBody: 1 << 20})
	pics := []pic{{media.PNG, pngBytes}, {media.JPEG, jpegBytes}, {media.WEBP, webpBytes}}
	resp := e.serve(t, "POST", "/v1/posts", hdr("X-API-Key", hrKey, "Content-Type", "application/json"), mediaBody("With pictures", pics...))
	if resp.StatusCode != 202 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var body struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	ev := lastRequest(t, e)
	if ev.GetPostId() != body.ID || len(ev.GetMedia()) != len(pics) {
		t.Fatalf("queued %q with %d pictures, want %q with %d", ev.GetPostId(), len(ev.GetMedia()), body.ID, len(pics))
	}
	for i, m := range ev.GetMedia() {
		sum := sha256.Sum256(pics[i].data)
		if m.GetObjectName() != media.ObjectName(body.ID, i) || !bytes.Equal(m.GetSha256(), sum[:]) || m.GetContentType() != pics[i].ct || m.GetSize() != int64(len(pics[i].data)) {
			t.Errorf("picture %d queued as %v", i, m)
		}
		ref := media.Ref{Name: m.GetObjectName(), SHA256: sum, ContentType: m.GetContentType(), Size: m.GetSize()}
		got, err := e.media.Get(context.Background(), ref)
		if err != nil || !bytes.Equal(got, pics[i].data) {
			t.Errorf("picture %d in the bucket: %v", i, err)
		}
	}
	raw, _ := proto.Marshal(ev)
	if bytes.Contains(raw, pngBytes[:16]) {
		t.Error("the event carries the picture's bytes")
	}
}

func TestPostWithBadMediaIsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t, options{maxBody: 1 << 20})
	png := pic{media.PNG, pngBytes}
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCode   string
		wantTarget string
		wantText   string
	}{
		{"bad base64", `{"tweet":"x","requestedby":"jo","media":[{"$content-type":"image/png","$content":"not base64!"}]}`, 400, "invalid_media", "media[0]", "not valid base64"},
		{"a type X does not take", mediaBody("x", png, pic{"image/svg+xml", []byte("<svg/>")}), 415, "unsupported_media_type", "media[1]", "image/svg+xml"},
		{"bytes that are not the declared type", mediaBody("x", png, png, pic{media.PNG, jpegBytes}), 400, "invalid_media", "media[2]", "declared image/png but its bytes are image/jpeg"},
		{"html declared as a picture", mediaBody("x", pic{media.JPEG, []byte("<html><script>alert(1)</script></html>")}), 400, "invalid_media", "media[0]", "text/html"},
		{"five pictures", mediaBody("x", png, png, png, png, png), 400, "invalid_media", "media[4]", "at most 4"},
		{"a GIF beside an image", mediaBody("x", png, pic{media.GIF, gifBytes}), 400, "invalid_media", "media[1]", "only picture"},
		{"an empty picture", mediaBody("x", pic{media.PNG, nil}), 400, "invalid_media", "media[0]", "empty"},
		{"a missing $content", `{"tweet":"x","requestedby":"jo","media":[{"$content-type":"image/png"}]}`, 400, "invalid_media", "media[0]", "needs both"},
		{"an unknown field in an item", `{"tweet":"x","requestedby":"jo","media":[{"$content-type":"image/png","$content":"","url":"http://x"}]}`, 400, "unknown_field", "url", "media item"},
		{"media not an array", `{"tweet":"x","requestedby":"jo","media":"picture"}`, 400, "invalid_json", "media", "media must be an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := e.serve(t, "POST", "/v1/posts", hdr("X-API-Key", hrKey, "Content-Type", "application/json"), tt.body)
			var got struct {
				Error struct{ Code, Message, Target string }
			}
			_ = json.NewDecoder(resp.Body).Decode(&got)
			if resp.StatusCode != tt.wantStatus || got.Error.Code != tt.wantCode || got.Error.Target != tt.wantTarget || !strings.Contains(got.Error.Message, tt.wantText) {
				t.Errorf("got %d %+v; want %d %s at %s mentioning %q", resp.StatusCode, got.Error, tt.wantStatus, tt.wantCode, tt.wantTarget, tt.wantText)
			}
		})
	}
}

func TestTooLargeMedia(t *testing.T) {
	t.Parallel()
	big := append(bytes.Clone(pngBytes), make([]byte, media.MaxImageBytes)...)
	t.Run("a picture over X's limit", func(t *testing.T) {
		t.Parallel()
		e := setup(t, options{maxBody: 30 << 20})
		resp := e.serve(t, "POST", "/v1/posts", hdr("X-API-Key", hrKey, "Content-Type", "application/json"), mediaBody("x", pic{media.PNG, pngBytes}, pic{media.PNG, big}))
		var got struct{ Error struct{ Code, Target string } }
		_ = json.NewDecoder(resp.Body).Decode(&got)
		if resp.StatusCode != 413 || got.Error.Target != "media[1]" {
			t.Errorf("got %d %+v, want 413 at media[1]", resp.StatusCode, got.Error)
		}
	})
	t.Run("a body over the gateway's limit", func(t *testing.T) {
		t.Parallel()
		e := setup(t, options{maxBody: 1 << 20})
		resp := e.serve(t, "POST", "/v1/posts", hdr("X-API-Key", hrKey, "Content-Type", "application/json"), mediaBody("x", pic{media.PNG, big}))
		if resp.StatusCode != 413 {
			t.Errorf("got %d, want 413", resp.StatusCode)
		}
	})
}

// TestIdempotencyKeyCoversMedia: the same key with the same text but another picture is another request.
func TestIdempotencyKeyCoversMedia(t *testing.T) {
	t.Parallel()
	e := setup(t, options{maxBody: 1 << 20})
	h := hdr("X-API-Key", hrKey, "Content-Type", "application/json", "Idempotency-Key", "media-key-1")
	if resp := e.serve(t, "POST", "/v1/posts", h, mediaBody("Same text", pic{media.PNG, pngBytes})); resp.StatusCode != 202 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	if resp := e.serve(t, "POST", "/v1/posts", h, mediaBody("Same text", pic{media.PNG, pngBytes})); resp.StatusCode != 202 || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the same request again: %d, replayed %q", resp.StatusCode, resp.Header.Get("Idempotent-Replayed"))
	}
	for name, body := range map[string]string{
		"another picture": mediaBody("Same text", pic{media.JPEG, jpegBytes}),
		"no picture":      mediaBody("Same text"),
		"one more":        mediaBody("Same text", pic{media.PNG, pngBytes}, pic{media.PNG, pngBytes}),
	} {
		if resp := e.serve(t, "POST", "/v1/posts", h, body); resp.StatusCode != 422 {
			t.Errorf("%s under the same key: %d, want 422", name, resp.StatusCode)
		}
	}
}

// TestApprovalPageShowsPicturesFromTheGateway: the page's images come from the gateway's own route,
// authorised by the link's token, with the sniffed type, nosniff and a CSP; a replaced object is refused.
func TestApprovalPageShowsPicturesFromTheGateway(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	ctx := context.Background()
	id := "0190a0a0-0000-7000-8000-00000000abcd"
	var refs []*approvalv1.PostMedia
	for i, p := range []pic{{media.PNG, pngBytes}, {media.GIF, gifBytes}} {
		ref, err := e.media.Put(ctx, media.ObjectName(id, i), p.ct, p.data)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, &approvalv1.PostMedia{ObjectName: ref.Name, Sha256: ref.SHA256[:], ContentType: ref.ContentType, Size: ref.Size})
	}
	e.approvals.mu.Lock()
	e.approvals.mediaPost = &approvalv1.Post{Id: id, DepartmentId: hrID, Text: "With pictures", RequestedBy: "jo", Status: approvalv1.PostStatus_POST_STATUS_PENDING,
		CreatedAt: timestamppb.Now(), Mode: "first", Media: refs}
	e.approvals.mu.Unlock()

	page := e.serve(t, "GET", "/approvals/"+mediaLink, nil, "")
	html, _ := io.ReadAll(page.Body)
	for i := range refs {
		if want := fmt.Sprintf(`<img src="/approvals/%s/media/%d"`, mediaLink, i); !strings.Contains(string(html), want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("page CSP %q", csp)
	}

	img := e.serve(t, "GET", "/approvals/"+mediaLink+"/media/0", nil, "")
	got, _ := io.ReadAll(img.Body)
	if img.StatusCode != 200 || !bytes.Equal(got, pngBytes) || img.Header.Get("Content-Type") != media.PNG ||
		img.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(img.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("picture: %d %q %v", img.StatusCode, img.Header.Get("Content-Type"), img.Header)
	}
	for _, target := range []string{"/approvals/" + mediaLink + "/media/2", "/approvals/" + mediaLink + "/media/01", "/approvals/" + mediaLink + "/media/-1", "/approvals/tok-nope/media/0"} {
		if r := e.serve(t, "GET", target, nil, ""); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", target, r.StatusCode)
		}
	}
	// Someone with write access replaces the object: the page must not show it.
	if _, err := e.media.Put(ctx, media.ObjectName(id, 1), media.GIF, append(bytes.Clone(gifBytes), 'x')); err != nil {
		t.Fatal(err)
	}
	if r := e.serve(t, "GET", "/approvals/"+mediaLink+"/media/1", nil, ""); r.StatusCode != http.StatusConflict {
		t.Errorf("a replaced picture: %d, want 409", r.StatusCode)
	}
}
