package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

// fakePictures is the media bucket: objects by name, checked against the approved hash as media.Store
// checks them (the real store is tested in heraldshared/media).
type fakePictures struct {
	mu      sync.Mutex
	objects map[string][]byte
}

func (p *fakePictures) Get(_ context.Context, m ledger.Media) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	data, ok := p.objects[m.Name]
	if !ok {
		return nil, fmt.Errorf("%w: %s is gone", ledger.ErrMediaUnusable, m.Name)
	}
	if sha256.Sum256(data) != m.SHA256 {
		return nil, fmt.Errorf("%w: %s does not match its hash", ledger.ErrMediaUnusable, m.Name)
	}
	return data, nil
}

func (p *fakePictures) put(name string, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.objects[name] = data
}

var testPNG = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{9}, 100)...)

// withPictures stores n pictures for ev and names them, with their hashes, on the approval.
func (f fixture) withPictures(ev ledger.Approval, n int) ledger.Approval {
	for i := range n {
		data := append(bytes.Clone(testPNG), byte(i))
		name := fmt.Sprintf("%s/%d", ev.PostID, i)
		f.pics.put(name, data)
		ev.Media = append(ev.Media, ledger.Media{Name: name, SHA256: sha256.Sum256(data), ContentType: "image/png", Size: int64(len(data))})
	}
	return ev
}

func TestApprovalWithPicturesIsPostedWithThem(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ev := f.withPictures(approved("With two pictures"), 2)
	f.handle(t, ev)
	got := f.exactlyOnce(t, ev, ledger.StatePublished)
	tw := f.sandbox.Tweets()[0]
	if len(tw.Media) != 2 {
		t.Errorf("the tweet carries %d pictures, want 2", len(tw.Media))
	}
	if len(got.Media) != 2 || got.Media[1] != ev.Media[1] {
		t.Errorf("the ledger keeps the pictures as %v, want %v", got.Media, ev.Media)
	}
}

// TestTamperedPictureIsNeverPosted: an object replaced in the bucket after the approval (or deleted)
// fails the post before anything is sent.
func TestTamperedPictureIsNeverPosted(t *testing.T) {
	t.Parallel()
	for name, spoil := range map[string]func(f fixture, ev ledger.Approval){
		"replaced": func(f fixture, ev ledger.Approval) {
			f.pics.put(ev.Media[1].Name, []byte("\x89PNG\r\n\x1a\nsomething else"))
		},
		"deleted": func(f fixture, ev ledger.Approval) {
			f.pics.mu.Lock()
			delete(f.pics.objects, ev.Media[0].Name)
			f.pics.mu.Unlock()
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ev := f.withPictures(approved("Tampered: "+name), 2)
			spoil(f, ev)
			f.handle(t, ev)
			got := f.exactlyOnce(t, ev, ledger.StateFailed)
			if f.sandbox.PostCalls() != 0 || len(f.sandbox.Tweets()) != 0 {
				t.Errorf("something was posted: %d calls", f.sandbox.PostCalls())
			}
			if got.Error == "" {
				t.Error("the failure gives no reason")
			}
		})
	}
}

// TestCrashBetweenUploadAndPostPostsOnce: a delivery that uploaded the pictures and posted, then died
// before recording the outcome, is redelivered: the ledger finds the post on the timeline (where X shows
// it with a link to the pictures after the text) and never posts it again. One that died after
// uploading but before posting uploads again and posts once.
func TestCrashBetweenUploadAndPostPostsOnce(t *testing.T) {
	t.Parallel()
	for _, sent := range []bool{false, true} {
		t.Run(fmt.Sprintf("posted before the crash: %v", sent), func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ctx := context.Background()
			ev := f.withPictures(approved(fmt.Sprintf("Crash with pictures, sent %v", sent)), 1)
			now := f.clock.Now()
			if _, _, err := f.store.Begin(ctx, ledger.Publication{PostID: ev.PostID, Channel: "x", State: ledger.StateAttempting, Text: ev.Text,
				Attempts: 1, CreatedAt: now, UpdatedAt: now, Media: ev.Media}); err != nil {
				t.Fatal(err)
			}
			pics := []ledger.Attachment{{ContentType: "image/png", Data: f.pics.objects[ev.Media[0].Name]}}
			if sent {
				if _, err := f.client.Post(ctx, ev.Text, pics); err != nil {
					t.Fatal(err)
				}
			}
			before := f.sandbox.PostCalls()
			f.handle(t, ev)
			f.exactlyOnce(t, ev, ledger.StatePublished)
			if calls := f.sandbox.PostCalls() - before; sent && calls != 0 {
				t.Errorf("the redelivery posted %d more times though the post was on the timeline", calls)
			}
			if tw := f.sandbox.Tweets(); len(tw) != 1 || len(tw[0].Media) != 1 {
				t.Errorf("the sandbox holds %+v, want one tweet with its picture", tw)
			}
		})
	}
}
