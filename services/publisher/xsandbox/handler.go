package xsandbox

import (
	"crypto/subtle"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strconv"
)

// Handler serves the X API endpoints, the timeline page (/) and the sandbox's own endpoints under
// /_sandbox/ (the timeline as JSON, fault injection).
func (s *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2/tweets", s.authorized(s.postTweet))
	mux.HandleFunc("GET /2/users/me", s.authorized(func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]string{"id": userID, "name": "Contoso (sandbox)", "username": s.cfg.Username}})
	}))
	mux.HandleFunc("GET /2/users/{id}/tweets", s.authorized(func(w http.ResponseWriter, r *http.Request, _ string) {
		if r.PathValue("id") != userID {
			writeJSON(w, http.StatusOK, map[string]any{"errors": []map[string]string{{"title": "Not Found Error", "detail": "Could not find user with id: [" + r.PathValue("id") + "].", "type": "https://api.twitter.com/2/problems/resource-not-found"}}})
			return
		}
		tweets := s.Tweets()
		slices.Reverse(tweets)
		data := make([]map[string]string, len(tweets))
		for i, t := range tweets {
			data[i] = map[string]string{"id": t.ID, "text": t.Text}
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": map[string]int{"result_count": len(data)}})
	}))
	mux.HandleFunc("GET /_sandbox/tweets", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Tweets())
	})
	mux.HandleFunc("POST /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&f); err != nil || f.Status < 400 || f.Status > 599 {
			writeJSON(w, http.StatusBadRequest, problem{Title: "Invalid Request", Detail: `want {"status": 4xx|5xx, "count": n}`, Type: "about:blank", Status: 400})
			return
		}
		s.InjectFault(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		tweets := s.Tweets()
		slices.Reverse(tweets)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_ = page.Execute(w, map[string]any{"Username": s.cfg.Username, "Tweets": tweets})
	})
	return mux
}

// authorized checks the request's OAuth 1.0a header as X does and passes on the consumer key.
func (s *Sandbox) authorized(next func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		params, err := oauthParams(r.Header.Get("Authorization"))
		ok := err == nil &&
			subtle.ConstantTimeCompare([]byte(params["oauth_consumer_key"]), []byte(s.cfg.ConsumerKey)) == 1 &&
			subtle.ConstantTimeCompare([]byte(params["oauth_token"]), []byte(s.cfg.AccessToken)) == 1 &&
			verifySignature(r, nil, params, s.cfg.ConsumerSecret, s.cfg.AccessTokenSecret)
		if !ok {
			s.log.Warn("xsandbox: unauthorized request", "path", r.URL.Path)
			writeJSON(w, http.StatusUnauthorized, problem{Title: "Unauthorized", Detail: "Unauthorized", Type: "about:blank", Status: 401})
			return
		}
		next(w, r, params["oauth_consumer_key"])
	}
}

func (s *Sandbox) postTweet(w http.ResponseWriter, r *http.Request, consumerKey string) {
	var body struct {
		Text *string `json:"text"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil || body.Text == nil {
		writeJSON(w, http.StatusBadRequest, problem{Title: "Invalid Request", Detail: "One or more parameters to your request was invalid.",
			Type: "https://api.twitter.com/2/problems/invalid-request", Errors: []problemEntry{{Message: "$.text: is missing but it is required"}}})
		return
	}
	t, status, prob, rl := s.create(*body.Text, consumerKey)
	w.Header().Set("x-rate-limit-limit", strconv.Itoa(rl.limit))
	w.Header().Set("x-rate-limit-remaining", strconv.Itoa(rl.remaining))
	w.Header().Set("x-rate-limit-reset", strconv.FormatInt(rl.reset.Unix(), 10))
	if prob != nil {
		writeJSON(w, status, prob)
		return
	}
	s.log.Info("xsandbox: tweet posted", "id", t.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"data": map[string]any{"id": t.ID, "text": t.Text, "edit_history_tweet_ids": []string{t.ID}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var page = template.Must(template.New("page").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>X sandbox: @{{.Username}}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}
.tweet{border:1px solid #ddd;border-radius:12px;padding:1em;margin:1em 0;white-space:pre-wrap}.meta{color:#666;font-size:.9em}</style></head><body>
<h1>@{{.Username}} <small class="meta">X API sandbox</small></h1>
<p class="meta">What Herald's publisher posted through the sandbox's X API v2, newest first.</p>
{{range .Tweets}}<div class="tweet">{{.Text}}<div class="meta">#{{.ID}} · {{.CreatedAt.Format "2006-01-02 15:04:05 MST"}} · signed by consumer {{.ConsumerKey}}</div></div>
{{else}}<p><em>Nothing posted yet.</em></p>{{end}}
</body></html>`))
