// Package mediacol encodes a publication's approved pictures for the publications.media column of both
// ledger engines: a JSON array of {"name", "sha256" (hex), "content_type", "size"}, or "" for none.
package mediacol

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/heraldhq/herald/services/publisher/internal/ledger"
)

type item struct {
	Name        string `json:"name"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// Encode returns the column's value for media.
func Encode(media []ledger.Media) string {
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

// Decode returns the pictures a column value holds. A value that does not decode is an error: a
// publication must never lose its pictures silently and go out without them.
func Decode(s string) ([]ledger.Media, error) {
	if s == "" {
		return nil, nil
	}
	var items []item
	if err := json.Unmarshal([]byte(s), &items); err != nil {
		return nil, fmt.Errorf("publications.media: %w", err)
	}
	out := make([]ledger.Media, len(items))
	for i, it := range items {
		sum, err := hex.DecodeString(it.SHA256)
		if err != nil || len(sum) != 32 {
			return nil, fmt.Errorf("publications.media: picture %d has a bad hash", i)
		}
		out[i] = ledger.Media{Name: it.Name, ContentType: it.ContentType, Size: it.Size}
		copy(out[i].SHA256[:], sum)
	}
	return out, nil
}
