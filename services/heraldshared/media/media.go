// Package media holds what Herald's three services agree on about the pictures posted with a text: which
// types and sizes X takes, how the gateway checks the bytes a department sent, how the objects are named in
// the JetStream object store bucket (eventbus.MediaBucket), and how a reader gets them back only when they
// are the bytes that were hashed. Events carry a Ref (name, SHA-256, type, size), never the bytes.
package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// X's limits (docs.x.com, "Media best practices"): up to 4 images of at most 5 MB each, or one animated
// GIF of at most 15 MB. Herald treats every GIF as possibly animated, so a GIF travels alone: whether a
// GIF is animated would take decoding every frame, and X refuses an animated GIF beside other media only
// after the approver approved the post.
const (
	// MaxItems is the most pictures one post may carry.
	MaxItems = 4
	// MaxImageBytes is the largest JPEG, PNG or WEBP X takes.
	MaxImageBytes = 5 * 1024 * 1024
	// MaxGIFBytes is the largest GIF X takes.
	MaxGIFBytes = 15 * 1024 * 1024
)

// The content types X takes for pictures.
const (
	JPEG = "image/jpeg"
	PNG  = "image/png"
	GIF  = "image/gif"
	WEBP = "image/webp"
)

// Supported reports whether X takes pictures of contentType.
func Supported(contentType string) bool {
	switch contentType {
	case JPEG, PNG, GIF, WEBP:
		return true
	}
	return false
}

// MaxBytes is the largest picture of contentType X takes.
func MaxBytes(contentType string) int {
	if contentType == GIF {
		return MaxGIFBytes
	}
	return MaxImageBytes
}

// Category is the media_category X's upload endpoints expect for contentType.
func Category(contentType string) string {
	if contentType == GIF {
		return "tweet_gif"
	}
	return "tweet_image"
}

// Sniff returns the picture type data holds, from its first bytes (net/http.DetectContentType, the
// WHATWG algorithm): one of the supported types, or what else it looks like.
func Sniff(data []byte) string {
	ct := http.DetectContentType(data)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return ct
}

// Problem says what is wrong with one picture, so that the gateway can answer with the right status.
type Problem int

// The problems a picture can have.
const (
	// Unsupported: a type X does not take (415).
	Unsupported Problem = iota + 1
	// TooLarge: more bytes than X takes for the type (413).
	TooLarge
	// Mismatch: the bytes are not what the declared type says (400).
	Mismatch
	// Empty: no bytes at all (400).
	Empty
)

// CheckError is a picture the gateway refuses: which one (0-based, in the request's order) and why.
type CheckError struct {
	Index   int
	Problem Problem
	Message string
}

// Error implements error.
func (e *CheckError) Error() string { return fmt.Sprintf("media[%d]: %s", e.Index, e.Message) }

// Check checks that data, the index-th picture of a post, declared as contentType, is a picture X takes:
// a supported type, bytes that are that type, within its size.
func Check(index int, contentType string, data []byte) error {
	fail := func(p Problem, format string, args ...any) error {
		return &CheckError{Index: index, Problem: p, Message: fmt.Sprintf(format, args...)}
	}
	if !Supported(contentType) {
		return fail(Unsupported, "X does not take %q; send image/jpeg, image/png, image/gif or image/webp", contentType)
	}
	if len(data) == 0 {
		return fail(Empty, "$content is empty")
	}
	if max := MaxBytes(contentType); len(data) > max {
		return fail(TooLarge, "is %d bytes; X takes %s of at most %d bytes (%d MB)", len(data), contentType, max, max/(1024*1024))
	}
	if got := Sniff(data); got != contentType {
		return fail(Mismatch, "is declared %s but its bytes are %s", contentType, got)
	}
	return nil
}

// CheckSet checks the combination of pictures X takes: at most MaxItems, and a GIF only alone. types are
// the declared content types in order.
func CheckSet(types []string) error {
	if len(types) > MaxItems {
		return &CheckError{Index: MaxItems, Problem: Mismatch, Message: fmt.Sprintf("a post takes at most %d pictures; this one has %d", MaxItems, len(types))}
	}
	if len(types) > 1 {
		for i, t := range types {
			if t == GIF {
				return &CheckError{Index: i, Problem: Mismatch, Message: "a GIF must be the post's only picture (X takes one animated GIF, or up to 4 images)"}
			}
		}
	}
	return nil
}

// Ref names one picture in the bucket and pins its content.
type Ref struct {
	// Name is the object's name: ObjectName(post id, index).
	Name string
	// SHA256 is the hash of the bytes; Get refuses any other bytes.
	SHA256 [32]byte
	// ContentType is the sniffed type.
	ContentType string
	// Size is the number of bytes.
	Size int64
}

// ObjectName is the name of a post's index-th picture. The post id comes first, so that the retention
// sweep knows whose picture an object is without any other record, and so that two posts never share an
// object: deleting a finished post's pictures can never take a waiting post's.
func ObjectName(postID string, index int) string { return postID + "/" + strconv.Itoa(index) }

// PostIDOf returns the post id an object name starts with, and false for a name ObjectName did not make.
func PostIDOf(name string) (string, bool) {
	id, idx, ok := strings.Cut(name, "/")
	if !ok {
		return "", false
	}
	if _, err := uuid.Parse(id); err != nil {
		return "", false
	}
	if n, err := strconv.Atoi(idx); err != nil || n < 0 || n >= MaxItems || strconv.Itoa(n) != idx {
		return "", false
	}
	return id, true
}

// ErrTampered means an object's bytes are not the ones its Ref hashed: someone replaced it in the bucket
// (or it was damaged). Nothing may show or post them.
var ErrTampered = errors.New("media object does not match its hash")

// ErrNotFound means the bucket has no such object (deleted by the retention sweep, or never stored).
var ErrNotFound = errors.New("media object not found")

// Store reads and writes pictures in the media bucket.
type Store struct {
	obs jetstream.ObjectStore
}

// Open binds to the media bucket of stream, which the approval service created.
func Open(ctx context.Context, js jetstream.JetStream, bucket string) (*Store, error) {
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("media bucket %s: %w", bucket, err)
	}
	return &Store{obs: obs}, nil
}

// Put stores data under name and returns its Ref. Putting the same bytes under the same name again (a
// retried request) leaves one object.
func (s *Store) Put(ctx context.Context, name, contentType string, data []byte) (Ref, error) {
	ref := Ref{Name: name, SHA256: sha256.Sum256(data), ContentType: contentType, Size: int64(len(data))}
	// A retried request stores the same bytes again: keep the object rather than replace it, which would
	// leave the old chunks behind (only the approval service may purge them).
	if info, err := s.obs.GetInfo(ctx, name); err == nil && !info.Deleted &&
		info.Digest == "SHA-256="+base64.URLEncoding.EncodeToString(ref.SHA256[:]) && info.Size == uint64(len(data)) {
		return ref, nil
	}
	meta := jetstream.ObjectMeta{Name: name, Headers: map[string][]string{"Content-Type": {contentType}}}
	if _, err := s.obs.Put(ctx, meta, bytes.NewReader(data)); err != nil {
		return Ref{}, fmt.Errorf("store %s: %w", name, err)
	}
	return ref, nil
}

// Get returns the bytes of ref, refusing with ErrTampered anything that is not exactly the hashed bytes.
// It never reads more than ref.Size (plus one byte, to notice a longer object).
func (s *Store) Get(ctx context.Context, ref Ref) ([]byte, error) {
	res, err := s.obs.Get(ctx, ref.Name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%s: %w", ref.Name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref.Name, err)
	}
	defer res.Close()
	data, err := io.ReadAll(io.LimitReader(res, ref.Size+1))
	if err != nil {
		if errors.Is(err, jetstream.ErrDigestMismatch) {
			return nil, fmt.Errorf("%s: %w", ref.Name, ErrTampered)
		}
		return nil, fmt.Errorf("read %s: %w", ref.Name, err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != ref.Size || subtle.ConstantTimeCompare(sum[:], ref.SHA256[:]) != 1 {
		return nil, fmt.Errorf("%s: %w", ref.Name, ErrTampered)
	}
	return data, nil
}

// Object is an object in the bucket, as the retention sweep sees it.
type Object struct {
	Name string
	// PostID is the post the object belongs to; empty for a name ObjectName did not make.
	PostID string
	// ModTime is when the object was stored.
	ModTime int64
}

// List returns every object in the bucket.
func (s *Store) List(ctx context.Context) ([]Object, error) {
	infos, err := s.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list media: %w", err)
	}
	out := make([]Object, 0, len(infos))
	for _, in := range infos {
		id, _ := PostIDOf(in.Name)
		out = append(out, Object{Name: in.Name, PostID: id, ModTime: in.ModTime.UnixMicro()})
	}
	return out, nil
}

// Delete removes the object name; deleting one that is gone already is not an error.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := s.obs.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}
