package stack

import (
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"sync"
	"time"
)

// TeamsStandIn receives what a Teams Workflows incoming webhook would (a message with Adaptive Card
// attachments) at POST /webhook, and shows the cards on a page at /, newest first. It is the local
// stack's stand-in for a Teams channel: set a department's policy teams_webhook_url to its /webhook URL.
type TeamsStandIn struct {
	mu    sync.Mutex
	cards []receivedCard
}

type receivedCard struct {
	Received time.Time
	Card     adaptiveCard
}

// adaptiveCard is the part of an Adaptive Card the page shows.
type adaptiveCard struct {
	Body []struct {
		Type  string `json:"type"`
		Text  string `json:"text"`
		Facts []struct {
			Title string `json:"title"`
			Value string `json:"value"`
		} `json:"facts"`
	} `json:"body"`
	Actions []struct {
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"actions"`
}

// Cards returns the cards received so far, oldest first.
func (t *TeamsStandIn) Cards() []adaptiveCard {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]adaptiveCard, len(t.cards))
	for i, c := range t.cards {
		out[i] = c.Card
	}
	return out
}

// Handler serves the webhook and the page.
func (t *TeamsStandIn) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Type        string `json:"type"`
			Attachments []struct {
				ContentType string       `json:"contentType"`
				Content     adaptiveCard `json:"content"`
			} `json:"attachments"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg); err != nil || msg.Type != "message" {
			http.Error(w, "want a message with Adaptive Card attachments", http.StatusBadRequest)
			return
		}
		t.mu.Lock()
		for _, a := range msg.Attachments {
			if a.ContentType == "application/vnd.microsoft.card.adaptive" {
				t.cards = append(t.cards, receivedCard{Received: time.Now().UTC(), Card: a.Content})
			}
		}
		if len(t.cards) > 200 {
			t.cards = t.cards[len(t.cards)-200:]
		}
		t.mu.Unlock()
		// As Workflows does: accepted, processed later.
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		t.mu.Lock()
		cards := make([]receivedCard, len(t.cards))
		for i, c := range t.cards {
			cards[len(t.cards)-1-i] = c
		}
		t.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_ = teamsPage.Execute(w, cards)
	})
	return mux
}

var teamsPage = template.Must(template.New("teams").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Teams stand-in</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}
.card{border:1px solid #d1d1d1;border-left:4px solid #5b5fc7;border-radius:6px;padding:.8em 1em;margin:1em 0}
.meta{color:#616161;font-size:.85em}dt{font-weight:bold;float:left;clear:left;margin-right:.5em}
a.button{display:inline-block;background:#5b5fc7;color:#fff;padding:.4em 1em;border-radius:4px;text-decoration:none}</style></head>
<body><h1>Teams channel (stand-in)</h1>
<p class="meta">Cards posted to this stack's Workflows webhook stand-in, newest first. Reload to see new ones.</p>
{{range .}}<div class="card"><p class="meta">{{.Received.Format "2 Jan 2006 15:04:05 MST"}}</p>
{{range .Card.Body}}{{if eq .Type "FactSet"}}<dl>{{range .Facts}}<dt>{{.Title}}</dt><dd>{{.Value}}</dd>{{end}}</dl>{{else}}<p>{{.Text}}</p>{{end}}{{end}}
{{range .Card.Actions}}<a class="button" href="{{.URL}}">{{.Title}}</a> {{end}}</div>
{{else}}<p>No cards yet.</p>{{end}}
</body></html>
`))
