package xapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
	"github.com/heraldhq/herald/services/publisher/internal/xapi"
)

var (
	pngPic = ledger.Attachment{ContentType: "image/png", Data: append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 2500)...)}
	gifPic = ledger.Attachment{ContentType: "image/gif", Data: append([]byte("GIF89a\x01\x00\x01\x00"), bytes.Repeat([]byte{8}, 900)...)}
)

// TestPostUploadsPicturesInChunks posts through the sandbox's v2 media upload: the pictures arrive whole
// (appended in several segments), a GIF waits for its processing, and the post carries them in order.
func TestPostUploadsPicturesInChunks(t *testing.T) {
	sb, srv := setup(t)
	cl, err := xapi.New(srv.URL, creds, 5*time.Second, xapi.WithChunkSize(1000),
		xapi.WithClock(time.Now, func(context.Context, time.Duration) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	for _, pics := range [][]ledger.Attachment{{pngPic, pngPic}, {gifPic}} {
		text := "With " + pics[0].ContentType
		res, err := cl.Post(context.Background(), text, pics)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		var tw = sb.Tweets()[len(sb.Tweets())-1]
		if tw.ID != res.RemoteID || tw.Text != text || len(tw.Media) != len(pics) {
			t.Fatalf("posted %+v, want %q with %d pictures", tw, text, len(pics))
		}
		for i, id := range tw.Media {
			resp, err := http.Get(srv.URL + "/_sandbox/media/" + id)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(got, pics[i].Data) || resp.Header.Get("Content-Type") != pics[i].ContentType {
				t.Errorf("picture %d on the sandbox: %d bytes of %s, want %d of %s", i, len(got), resp.Header.Get("Content-Type"), len(pics[i].Data), pics[i].ContentType)
			}
		}
	}
}

// TestUploadRefusalsAreX: a picture X refuses fails the post for good, and nothing is posted.
func TestUploadRefusalsAreX(t *testing.T) {
	sb, srv := setup(t)
	cl := client(t, srv.URL, creds)
	for name, pic := range map[string]ledger.Attachment{
		"bytes that are not the type": {ContentType: "image/png", Data: gifPic.Data},
		"a type X does not take":      {ContentType: "image/svg+xml", Data: []byte("<svg/>")},
	} {
		_, err := cl.Post(context.Background(), "Refused: "+name, []ledger.Attachment{pic})
		if ce := channelError(t, err); ce.Kind != ledger.Rejected {
			t.Errorf("%s: %v (kind %d), want Rejected", name, err, ce.Kind)
		}
	}
	if n := len(sb.Tweets()); n != 0 {
		t.Errorf("%d tweets posted, want none", n)
	}
}

// TestUploadFailureIsRetryable: an upload X cannot take right now posts nothing, so the ledger may send
// again without reconciling.
func TestUploadFailureIsRetryable(t *testing.T) {
	down := "http://127.0.0.1:1" // nothing listens: the upload cannot even start
	cl := client(t, down, creds)
	_, err := cl.Post(context.Background(), "Not sent", []ledger.Attachment{pngPic})
	if ce := channelError(t, err); ce.Kind != ledger.Retryable {
		t.Errorf("%v (kind %d), want Retryable", err, ce.Kind)
	}
}

// TestV1RefusesPicturesBeforeSending: the v1.1 channel does not upload pictures; it refuses such a post
// for good rather than publishing the text without them.
func TestV1RefusesPicturesBeforeSending(t *testing.T) {
	sb, srv := setup(t)
	cl, err := xapi.NewV1(srv.URL, creds, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Post(context.Background(), "With a picture over v1.1", []ledger.Attachment{pngPic})
	if ce := channelError(t, err); ce.Kind != ledger.Rejected {
		t.Errorf("%v (kind %d), want Rejected", err, ce.Kind)
	}
	if sb.PostCalls() != 0 || len(sb.Tweets()) != 0 {
		t.Error("the v1.1 channel sent something")
	}
}
