// Package mediajson encodes a post's pictures for the posts.media column of both store engines: a JSON
// array of {"name", "sha256" (hex), "content_type", "size"}, or "" for a post without pictures.
package mediajson

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/heraldhq/herald/services/approval/internal/approval"
)

type item struct {
	Name        string `json:"name"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// Encode returns the column's value for media.
func Encode(media []approval.Media) string {
	if len(media) == 0 {
		return ""
	}
	items := make([]item, len(media))
	for i, m := range media {
		items[i] = item{Name: m.Name, SHA256: hex.EncodeToString(m.SHA256[:]), ContentType: m.ContentType, Size: m.Size}
	}
	b, _ := json.Marshal(items) // strings and integers only: cannot fail
	return string(b)
}

// Decode returns the pictures a column value holds. A value that does not decode is an error: the
// store wrote it, so it means damage, and a post must never lose its pictures silently.
func Decode(s string) ([]approval.Media, error) {
	if s == "" {
		return nil, nil
	}
	var items []item
	if err := json.Unmarshal([]byte(s), &items); err != nil {
		return nil, fmt.Errorf("posts.media: %w", err)
	}
	out := make([]approval.Media, len(items))
	for i, it := range items {
		sum, err := hex.DecodeString(it.SHA256)
		if err != nil || len(sum) != 32 {
			return nil, fmt.Errorf("posts.media: picture %d has a bad hash", i)
		}
		out[i] = approval.Media{Name: it.Name, ContentType: it.ContentType, Size: it.Size}
		copy(out[i].SHA256[:], sum)
	}
	return out, nil
}
