package approval

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MediaBucket is where the gateway stored the pictures of post requests; the retention sweep lists and
// deletes them. The adapter over the JetStream object store lives in approvald.
type MediaBucket interface {
	// List returns every stored picture.
	List(ctx context.Context) ([]StoredMedia, error)
	// Delete removes a picture; deleting one that is gone is not an error.
	Delete(ctx context.Context, name string) error
}

// StoredMedia is a picture in the bucket.
type StoredMedia struct {
	Name string
	// PostID is the post whose picture it is, from its name; empty for a name the gateway does not make.
	PostID string
	// StoredAt is when the gateway stored it.
	StoredAt time.Time
}

// finished reports whether a post can change no more in a way that needs its pictures: rejected,
// expired and cancelled posts are never published; published and failed ones were. Pending and approved
// posts still need them (the approvers look at them, the publisher posts them), and so do unknown ones,
// which ops may retry.
func finished(s Status) bool {
	switch s {
	case StatusRejected, StatusExpired, StatusCancelled, StatusPublished, StatusFailed:
		return true
	}
	return false
}

// SweepMedia deletes the pictures of posts that finished at least retention ago, and returns how many it
// deleted. It decides from the post's state in the database, not from the object's age alone, which a
// bucket time to live would: a post waiting for its approvers (or for ops) keeps its pictures however
// old they are. Objects younger than retention are never deleted, whatever their post, so a picture whose
// request is still on its way through JetStream is safe; an old object whose post the service never
// recorded (the gateway stored it, then failed to queue the request) is deleted. Several replicas may
// sweep at once: deleting twice is harmless.
func (s *Service) SweepMedia(ctx context.Context, bucket MediaBucket, retention time.Duration) (int, error) {
	if retention <= 0 {
		return 0, errors.New("sweep media: the retention must be positive")
	}
	objects, err := bucket.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("sweep media: %w", err)
	}
	now := s.now()
	verdicts := map[string]bool{}
	deleted := 0
	for _, o := range objects {
		if now.Sub(o.StoredAt) < retention {
			continue
		}
		del, ok := verdicts[o.PostID]
		if !ok {
			if del, err = s.mediaExpired(ctx, o.PostID, now, retention); err != nil {
				return deleted, err
			}
			verdicts[o.PostID] = del
		}
		if !del {
			continue
		}
		if err := bucket.Delete(ctx, o.Name); err != nil {
			return deleted, fmt.Errorf("sweep media: %w", err)
		}
		deleted++
		s.log.InfoContext(ctx, "deleted a finished post's picture after its retention", "post_id", o.PostID, "object", o.Name)
	}
	return deleted, nil
}

// mediaExpired reports whether the pictures of postID may go.
func (s *Service) mediaExpired(ctx context.Context, postID string, now time.Time, retention time.Duration) (bool, error) {
	if postID == "" {
		return true, nil
	}
	p, err := s.store.GetPost(ctx, postID)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("sweep media of %s: %w", postID, err)
	}
	return finished(p.Status) && now.Sub(p.UpdatedAt) >= retention, nil
}
