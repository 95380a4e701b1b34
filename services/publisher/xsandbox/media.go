package xsandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/heraldhq/herald/services/heraldshared/media"
)

// uploads are the sandbox's media uploads, as X's v2 media upload keeps them: initialized with a type
// and a size, appended in segments, finalized (the bytes must add up and be the declared type), then
// usable in one post. The bytes stay in memory for the sandbox's life, for the timeline page.
type uploads struct {
	mu     sync.Mutex
	next   uint64
	byID   map[string]*upload
	maxAll int
}

type upload struct {
	mediaType string
	category  string
	total     int
	segments  map[int][]byte
	data      []byte
	finalized bool
	// polled counts STATUS calls: a GIF is "in_progress" until polled once, as X processes GIFs
	// asynchronously.
	polled int
}

func newUploads() *uploads {
	return &uploads{next: 1860000000000000000, byID: map[string]*upload{}, maxAll: 200}
}

func invalidRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, problem{Title: "Invalid Request", Detail: "One or more parameters to your request was invalid.",
		Type: "https://api.twitter.com/2/problems/invalid-request", Errors: []problemEntry{{Message: msg}}})
}

// mediaInit serves POST /2/media/upload/initialize.
func (s *Sandbox) mediaInit(w http.ResponseWriter, r *http.Request, _ string) {
	var body struct {
		MediaType     string `json:"media_type"`
		TotalBytes    int    `json:"total_bytes"`
		MediaCategory string `json:"media_category"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil {
		invalidRequest(w, "The request body is not valid JSON.")
		return
	}
	switch {
	case !media.Supported(body.MediaType):
		invalidRequest(w, "$.media_type: does not have a value in the enumeration")
		return
	case body.MediaCategory != "tweet_image" && body.MediaCategory != "tweet_gif":
		invalidRequest(w, "$.media_category: does not have a value in the enumeration")
		return
	case body.TotalBytes <= 0 || body.TotalBytes > media.MaxBytes(body.MediaType):
		invalidRequest(w, "File size exceeds "+strconv.Itoa(media.MaxBytes(body.MediaType))+" bytes.")
		return
	}
	u := s.uploads
	u.mu.Lock()
	if len(u.byID) >= u.maxAll {
		clear(u.byID) // a sandbox: forget old uploads rather than grow without bound
	}
	id := strconv.FormatUint(u.next, 10)
	u.next++
	u.byID[id] = &upload{mediaType: body.MediaType, category: body.MediaCategory, total: body.TotalBytes, segments: map[int][]byte{}}
	u.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"id": id, "media_key": "3_" + id, "expires_after_secs": 86400}})
}

// mediaAppend serves POST /2/media/upload/{id}/append: a multipart form with segment_index and media.
func (s *Sandbox) mediaAppend(w http.ResponseWriter, r *http.Request, _ string) {
	r.Body = http.MaxBytesReader(w, r.Body, 6<<20)
	if err := r.ParseMultipartForm(6 << 20); err != nil {
		invalidRequest(w, "The request must be multipart/form-data with segment_index and media.")
		return
	}
	seg, err := strconv.Atoi(r.FormValue("segment_index"))
	if err != nil || seg < 0 || seg > 999 {
		invalidRequest(w, "$.segment_index: must be an integer between 0 and 999")
		return
	}
	f, _, err := r.FormFile("media")
	if err != nil {
		invalidRequest(w, "$.media: is missing but it is required")
		return
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	u := s.uploads
	u.mu.Lock()
	defer u.mu.Unlock()
	up, ok := u.byID[r.PathValue("id")]
	switch {
	case !ok:
		invalidRequest(w, "Invalid media_id.")
	case up.finalized:
		invalidRequest(w, "The upload is already finalized.")
	default:
		up.segments[seg] = data
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"data":{"expires_at":86400}}`))
	}
}

// mediaFinalize serves POST /2/media/upload/{id}/finalize: the segments must add up to the declared size
// and be the declared type.
func (s *Sandbox) mediaFinalize(w http.ResponseWriter, r *http.Request, _ string) {
	u := s.uploads
	u.mu.Lock()
	defer u.mu.Unlock()
	id := r.PathValue("id")
	up, ok := u.byID[id]
	if !ok {
		invalidRequest(w, "Invalid media_id.")
		return
	}
	var all bytes.Buffer
	for i := range len(up.segments) {
		seg, ok := up.segments[i]
		if !ok {
			invalidRequest(w, "Segments are missing: segment "+strconv.Itoa(i)+" was never appended.")
			return
		}
		all.Write(seg)
	}
	if all.Len() != up.total {
		invalidRequest(w, "File size mismatch: the segments add up to "+strconv.Itoa(all.Len())+" bytes, not total_bytes "+strconv.Itoa(up.total)+".")
		return
	}
	if media.Sniff(all.Bytes()) != up.mediaType {
		invalidRequest(w, "InvalidMedia: the media is not a valid "+up.mediaType+".")
		return
	}
	up.data, up.finalized, up.segments = all.Bytes(), true, nil
	data := map[string]any{"id": id, "media_key": "3_" + id, "size": up.total, "expires_after_secs": 86400}
	if up.category == "tweet_gif" {
		data["processing_info"] = map[string]any{"state": "pending", "check_after_secs": 1}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// mediaStatus serves GET /2/media/upload?command=STATUS&media_id=...
func (s *Sandbox) mediaStatus(w http.ResponseWriter, r *http.Request, _ string) {
	if r.URL.Query().Get("command") != "STATUS" {
		invalidRequest(w, "$.command: does not have a value in the enumeration")
		return
	}
	u := s.uploads
	u.mu.Lock()
	defer u.mu.Unlock()
	id := r.URL.Query().Get("media_id")
	up, ok := u.byID[id]
	if !ok || !up.finalized {
		invalidRequest(w, "Invalid media_id.")
		return
	}
	up.polled++
	state, pct := "succeeded", 100
	if up.category == "tweet_gif" && up.polled < 2 {
		state, pct = "in_progress", 50
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"id": id, "media_key": "3_" + id,
		"processing_info": map[string]any{"state": state, "check_after_secs": 1, "progress_percent": pct}}})
}

// attachable checks a post's media ids as X does: at most 4, each a finalized upload whose processing
// finished, a GIF only alone. It returns X's message for ids it refuses.
func (s *Sandbox) attachable(ids []string) (string, bool) {
	if len(ids) > media.MaxItems {
		return "$.media.media_ids: must have at most 4 items", false
	}
	u := s.uploads
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, id := range ids {
		up, ok := u.byID[id]
		if !ok || !up.finalized || (up.category == "tweet_gif" && up.polled < 2) {
			return "Your media IDs are invalid.", false
		}
		if up.mediaType == media.GIF && len(ids) > 1 {
			return "Your media IDs are invalid.", false
		}
	}
	return "", true
}

// mediaBytes serves a posted picture for the timeline page.
func (s *Sandbox) mediaBytes(w http.ResponseWriter, r *http.Request) {
	u := s.uploads
	u.mu.Lock()
	up, ok := u.byID[r.PathValue("id")]
	u.mu.Unlock()
	if !ok || !up.finalized {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", up.mediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	_, _ = w.Write(up.data)
}
