package media_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/heraldshared/eventbus"
	"github.com/heraldhq/herald/services/heraldshared/media"
	"github.com/heraldhq/herald/services/heraldshared/testenv/natstest"
)

// Smallest headers that http.DetectContentType recognises.
var (
	png  = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	jpeg = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	gif  = []byte("GIF89a\x01\x00\x01\x00")
	webp = []byte("RIFF\x24\x00\x00\x00WEBPVP8 ")
)

func TestCheck(t *testing.T) {
	t.Parallel()
	big := append(bytes.Clone(png), make([]byte, media.MaxImageBytes)...)
	bigGIF := append(bytes.Clone(gif), make([]byte, media.MaxImageBytes)...)
	cases := []struct {
		name string
		ct   string
		data []byte
		want media.Problem
	}{
		{"png", media.PNG, png, 0},
		{"jpeg", media.JPEG, jpeg, 0},
		{"gif", media.GIF, gif, 0},
		{"webp", media.WEBP, webp, 0},
		{"a GIF over 5 MB is still one X takes", media.GIF, bigGIF, 0},
		{"svg is not taken", "image/svg+xml", []byte("<svg/>"), media.Unsupported},
		{"pdf is not taken", "application/pdf", []byte("%PDF-1.7"), media.Unsupported},
		{"type with parameters", "image/png; charset=x", png, media.Unsupported},
		{"empty", media.PNG, nil, media.Empty},
		{"png over 5 MB", media.PNG, big, media.TooLarge},
		{"declared png, bytes jpeg", media.PNG, jpeg, media.Mismatch},
		{"declared jpeg, bytes html", media.JPEG, []byte("<html><script>alert(1)</script>"), media.Mismatch},
	}
	for _, c := range cases {
		err := media.Check(2, c.ct, c.data)
		var ce *media.CheckError
		switch {
		case c.want == 0 && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != 0 && (!errors.As(err, &ce) || ce.Problem != c.want || ce.Index != 2):
			t.Errorf("%s: %v, want problem %d at index 2", c.name, err, c.want)
		}
	}
}

func TestCheckSet(t *testing.T) {
	t.Parallel()
	if err := media.CheckSet([]string{media.PNG, media.JPEG, media.WEBP, media.PNG}); err != nil {
		t.Errorf("four images: %v", err)
	}
	if err := media.CheckSet([]string{media.GIF}); err != nil {
		t.Errorf("one GIF: %v", err)
	}
	var ce *media.CheckError
	if err := media.CheckSet([]string{media.PNG, media.PNG, media.PNG, media.PNG, media.PNG}); !errors.As(err, &ce) || ce.Index != 4 {
		t.Errorf("five images: %v", err)
	}
	if err := media.CheckSet([]string{media.PNG, media.GIF}); !errors.As(err, &ce) || ce.Index != 1 {
		t.Errorf("a GIF beside an image: %v", err)
	}
}

func TestPostIDOf(t *testing.T) {
	t.Parallel()
	id := "0190a0a0-0000-7000-8000-000000000001"
	if got, ok := media.PostIDOf(media.ObjectName(id, 3)); !ok || got != id {
		t.Errorf("PostIDOf(ObjectName) = %q, %v", got, ok)
	}
	for _, bad := range []string{"", id, id + "/4", id + "/01", id + "/-1", "x/0", id + "/0/0"} {
		if _, ok := media.PostIDOf(bad); ok {
			t.Errorf("PostIDOf(%q) accepted a name ObjectName does not make", bad)
		}
	}
}

// TestGetRefusesReplacedObjects replaces an object in the bucket, as anyone with write access could, and
// checks that a reader holding the original Ref never gets the new bytes.
func TestGetRefusesReplacedObjects(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(natstest.Embedded(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	cfg := eventbus.MediaBucketConfig("TEST")
	if _, err := js.CreateObjectStore(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	s, err := media.Open(ctx, js, cfg.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	name := media.ObjectName("0190a0a0-0000-7000-8000-000000000001", 0)
	ref, err := s.Put(ctx, name, media.PNG, png)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, ref)
	if err != nil || !bytes.Equal(got, png) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	for _, forged := range [][]byte{append(bytes.Clone(png), 'x'), png[:len(png)-1], bytes.ToUpper(png)} {
		if _, err := s.Put(ctx, name, media.PNG, forged); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, ref); !errors.Is(err, media.ErrTampered) {
			t.Errorf("Get of a replaced object = %q, %v; want ErrTampered", got, err)
		}
	}
	if err := s.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, ref); !errors.Is(err, media.ErrNotFound) {
		t.Errorf("Get of a deleted object = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, name); err != nil {
		t.Errorf("deleting twice: %v", err)
	}
}
