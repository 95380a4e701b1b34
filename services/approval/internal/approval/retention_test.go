package approval_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

// bucket is an in-memory MediaBucket.
type bucket struct {
	mu      sync.Mutex
	objects []approval.StoredMedia
}

func (b *bucket) List(context.Context) ([]approval.StoredMedia, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.objects), nil
}

func (b *bucket) Delete(_ context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects = slices.DeleteFunc(b.objects, func(o approval.StoredMedia) bool { return o.Name == name })
	return nil
}

func (b *bucket) names() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, o := range b.objects {
		out = append(out, o.Name)
	}
	slices.Sort(out)
	return out
}

func pictures(postID string, n int) []approval.Media {
	out := make([]approval.Media, n)
	for i := range out {
		out[i] = approval.Media{Name: postID + "/" + string(rune('0'+i)), SHA256: sha256.Sum256([]byte{byte(i)}), ContentType: "image/png", Size: 10}
	}
	return out
}

// TestSweepMediaKeepsWaitingPostsPictures: only pictures of posts finished for the retention period, and
// old pictures of posts never recorded, are deleted; a pending post's pictures stay however old.
func TestSweepMediaKeepsWaitingPostsPictures(t *testing.T) {
	t.Parallel()
	f := setupWith(t, func(c *approval.Config) { c.TokenTTL = 90 * 24 * time.Hour })
	ctx := context.Background()
	submit := func() string {
		id := uuid.NewString()
		r := approval.Request{PostID: id, DepartmentID: f.dept.ID, Text: "Pictured " + id, RequestedBy: "jo", RequestedAt: *f.now, Media: pictures(id, 2)}
		if err := f.svc.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
		return id
	}
	start := *f.now
	waiting, cancelledOld := submit(), submit()
	if _, err := f.svc.CancelPost(ctx, cancelledOld, f.dept.ID, "test", "test"); err != nil {
		t.Fatal(err)
	}
	*f.now = start.Add(20 * 24 * time.Hour)
	cancelledRecent := submit()
	if _, err := f.svc.CancelPost(ctx, cancelledRecent, f.dept.ID, "test", "test"); err != nil {
		t.Fatal(err)
	}
	never := uuid.NewString()
	young := uuid.NewString()
	b := &bucket{}
	for _, id := range []string{waiting, cancelledOld, cancelledRecent, never} {
		b.objects = append(b.objects, approval.StoredMedia{Name: id + "/0", PostID: id, StoredAt: start}, approval.StoredMedia{Name: id + "/1", PostID: id, StoredAt: start})
	}
	b.objects = append(b.objects, approval.StoredMedia{Name: "stray", StoredAt: start}, approval.StoredMedia{Name: young + "/0", PostID: young, StoredAt: start.Add(35 * 24 * time.Hour)})

	*f.now = start.Add(35 * 24 * time.Hour)
	n, err := f.svc.SweepMedia(ctx, b, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{cancelledRecent + "/0", cancelledRecent + "/1", waiting + "/0", waiting + "/1", young + "/0"}
	slices.Sort(want)
	if got := b.names(); !slices.Equal(got, want) || n != 5 {
		t.Errorf("after the sweep (%d deleted) the bucket holds %v, want %v", n, got, want)
	}
	// Much later the pending post still keeps its pictures; the recently cancelled one's are gone.
	*f.now = start.Add(80 * 24 * time.Hour)
	if _, err := f.svc.SweepMedia(ctx, b, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	want = []string{waiting + "/0", waiting + "/1"}
	if got := b.names(); !slices.Equal(got, want) {
		t.Errorf("after the second sweep the bucket holds %v, want %v", got, want)
	}
	if p, err := f.svc.GetPost(ctx, waiting, f.dept.ID); err != nil || p.Status != approval.StatusPending || len(p.Media) != 2 {
		t.Errorf("the waiting post: %v, %v", p.Status, err)
	}
}

func TestSubmitRefusesMediaTheGatewayWouldNot(t *testing.T) {
	t.Parallel()
	f := setupWith(t, nil)
	id := uuid.NewString()
	other := uuid.NewString()
	for name, media := range map[string][]approval.Media{
		"five pictures":              pictures(id, 5),
		"another post's picture":     pictures(other, 1),
		"a type X does not take":     {{Name: id + "/0", SHA256: sha256.Sum256(nil), ContentType: "image/svg+xml", Size: 1}},
		"no hash":                    {{Name: id + "/0", ContentType: "image/png", Size: 1}},
		"pictures named out of turn": {pictures(id, 2)[1]},
	} {
		r := approval.Request{PostID: id, DepartmentID: f.dept.ID, Text: "x", RequestedBy: "jo", Media: media}
		if err := f.svc.Submit(context.Background(), r); !errors.Is(err, approval.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	r := approval.Request{PostID: id, DepartmentID: f.dept.ID, Text: "x", RequestedBy: "jo", Media: pictures(id, 4)}
	if err := f.svc.Submit(context.Background(), r); err != nil {
		t.Fatalf("four pictures: %v", err)
	}
	p, err := f.svc.GetPost(context.Background(), id, f.dept.ID)
	if err != nil || !slices.Equal(p.Media, r.Media) {
		t.Errorf("stored pictures %v, %v; want %v", p.Media, err, r.Media)
	}
}
