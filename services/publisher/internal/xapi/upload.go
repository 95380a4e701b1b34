package xapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// processing is X's processing_info on a media upload.
type processing struct {
	State          string `json:"state"`
	CheckAfterSecs int    `json:"check_after_secs"`
	Error          struct {
		Message string `json:"message"`
	} `json:"error"`
}

// uploadAnswer is the data of X's answers to the v2 media upload calls.
type uploadAnswer struct {
	Data struct {
		ID             string      `json:"id"`
		ProcessingInfo *processing `json:"processing_info"`
	} `json:"data"`
}

// upload sends one picture with X's v2 chunked media upload (docs.x.com, "Media upload"):
// POST /2/media/upload/initialize, POST /2/media/upload/{id}/append for each segment, POST
// /2/media/upload/{id}/finalize, then GET /2/media/upload?command=STATUS while processing_info says
// pending or in_progress. It returns the media id to post with.
func (c *Client) upload(ctx context.Context, a ledger.Attachment) (string, error) {
	init, _ := json.Marshal(map[string]any{"media_type": a.ContentType, "total_bytes": len(a.Data), "media_category": media.Category(a.ContentType)})
	var ans uploadAnswer
	if _, err := c.do(ctx, http.MethodPost, "/2/media/upload/initialize", nil, init, &ans); err != nil {
		return "", fmt.Errorf("initialize: %w", err)
	}
	id := ans.Data.ID
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", &ledger.ChannelError{Kind: ledger.Retryable, Message: fmt.Sprintf("X answered the upload's initialize without a media id (%q)", id)}
	}
	base := "/2/media/upload/" + url.PathEscape(id)
	for seg, off := 0, 0; off < len(a.Data); seg, off = seg+1, off+c.chunk {
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		_ = w.WriteField("segment_index", strconv.Itoa(seg))
		part, _ := w.CreateFormFile("media", "chunk")
		_, _ = part.Write(a.Data[off:min(off+c.chunk, len(a.Data))])
		_ = w.Close()
		if _, err := c.send(ctx, http.MethodPost, base+"/append", nil, w.FormDataContentType(), body.Bytes(), nil); err != nil {
			return "", fmt.Errorf("append segment %d: %w", seg, err)
		}
	}
	ans = uploadAnswer{}
	if _, err := c.do(ctx, http.MethodPost, base+"/finalize", nil, nil, &ans); err != nil {
		return "", fmt.Errorf("finalize: %w", err)
	}
	deadline := c.now().Add(c.maxProcessing)
	for p := ans.Data.ProcessingInfo; p != nil; p = ans.Data.ProcessingInfo {
		switch p.State {
		case "succeeded":
			return id, nil
		case "failed":
			return "", &ledger.ChannelError{Kind: ledger.Rejected, Message: "X could not process the picture: " + p.Error.Message}
		case "pending", "in_progress":
		default:
			return "", &ledger.ChannelError{Kind: ledger.Retryable, Message: fmt.Sprintf("X reports the picture's processing as %q", p.State)}
		}
		wait := time.Duration(max(p.CheckAfterSecs, 1)) * time.Second
		if c.now().Add(wait).After(deadline) {
			return "", &ledger.ChannelError{Kind: ledger.Retryable, Message: "X was still processing the picture after " + c.maxProcessing.String()}
		}
		if err := c.sleep(ctx, wait); err != nil {
			return "", &ledger.ChannelError{Kind: ledger.Retryable, Message: "not sent: " + err.Error()}
		}
		ans = uploadAnswer{}
		if _, err := c.do(ctx, http.MethodGet, "/2/media/upload", url.Values{"command": {"STATUS"}, "media_id": {id}}, nil, &ans); err != nil {
			return "", fmt.Errorf("status: %w", err)
		}
	}
	return id, nil
}

// uploadError says what a failed upload of picture i means for the post: nothing was posted, whatever
// happened to the upload, so anything but X's refusal of the picture (a 4xx, permanent) may be retried
// at once. An upload that got further than X admits costs nothing: its media id is never used.
func uploadError(i int, err error) error {
	var ce *ledger.ChannelError
	if errors.As(err, &ce) && ce.Kind == ledger.Rejected {
		return &ledger.ChannelError{Kind: ledger.Rejected, Message: fmt.Sprintf("picture %d: %s", i+1, ce.Message)}
	}
	msg := err.Error()
	retry := time.Duration(0)
	if errors.As(err, &ce) {
		retry = ce.RetryAfter
	}
	return &ledger.ChannelError{Kind: ledger.Retryable, Message: fmt.Sprintf("not posted: uploading picture %d failed: %s", i+1, msg), RetryAfter: retry}
}
