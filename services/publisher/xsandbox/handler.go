package xsandbox

import (
	"crypto/subtle"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Handler serves the X API endpoints, the timeline page (/) and the sandbox's own endpoints under
// /_sandbox/ (the timeline as JSON, fault injection).
func (s *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2/tweets", s.authorized(s.postTweet))
	mux.HandleFunc("POST /2/media/upload/initialize", s.authorized(s.mediaInit))
	mux.HandleFunc("POST /2/media/upload/{id}/append", s.authorized(s.mediaAppend))
	mux.HandleFunc("POST /2/media/upload/{id}/finalize", s.authorized(s.mediaFinalize))
	mux.HandleFunc("GET /2/media/upload", s.authorized(s.mediaStatus))
	mux.HandleFunc("GET /_sandbox/media/{id}", s.mediaBytes)
	mux.HandleFunc("GET /2/users/me", s.authorized(func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]string{"id": userID, "name": "Contoso (sandbox)", "username": s.cfg.Username}})
	}))
	mux.HandleFunc("GET /2/users/{id}/tweets", s.authorized(s.userTweets))
	mux.HandleFunc("POST /1.1/statuses/update.json", s.authorizedV1(s.v1Update))
	mux.HandleFunc("GET /1.1/account/verify_credentials.json", s.authorizedV1(func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, http.StatusOK, s.v1User())
	}))
	mux.HandleFunc("GET /1.1/statuses/user_timeline.json", s.authorizedV1(s.v1UserTimeline))
	mux.HandleFunc("GET /_sandbox/tweets", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Tweets())
	})
	mux.HandleFunc("POST /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
		dec.DisallowUnknownFields()
		err := dec.Decode(&f)
		if err == nil {
			err = f.validate()
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, problem{Title: "Invalid Request", Type: "about:blank", Status: 400,
				Detail: err.Error() + `; want {"status": 4xx|5xx, "count": n, "retry_after_seconds": s} or {"mode": "create_then_status" (with "status", default 503) | "create_then_drop" | "hang" | "create_then_hang", "count": n}`})
			return
		}
		s.InjectFault(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		pending := append([]Fault{}, s.faults...)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"pending": pending, "served": s.Served()})
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		tweets := s.Tweets()
		slices.Reverse(tweets)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
		served := s.Served()
		slices.Reverse(served)
		_ = page.Execute(w, map[string]any{"Username": s.cfg.Username, "Tweets": tweets, "Served": served})
	})
	return mux
}

// authorized checks the request's OAuth 1.0a header as X does and passes on the consumer key.
func (s *Sandbox) authorized(next func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, ok := s.verify(r, nil)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, problem{Title: "Unauthorized", Detail: "Unauthorized", Type: "about:blank", Status: 401})
			return
		}
		next(w, r, key)
	}
}

// authorizedV1 is authorized for the v1.1 endpoints, whose form parameters are part of the signature
// and whose errors have v1.1's shape.
func (s *Sandbox) authorizedV1(next func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeV1Error(w, http.StatusBadRequest, 44, "Invalid request body.")
			return
		}
		key, ok := s.verify(r, r.PostForm)
		if !ok {
			writeV1Error(w, http.StatusUnauthorized, 32, "Could not authenticate you.")
			return
		}
		next(w, r, key)
	}
}

func (s *Sandbox) verify(r *http.Request, form url.Values) (string, bool) {
	params, err := oauthParams(r.Header.Get("Authorization"))
	ok := err == nil &&
		subtle.ConstantTimeCompare([]byte(params["oauth_consumer_key"]), []byte(s.cfg.ConsumerKey)) == 1 &&
		subtle.ConstantTimeCompare([]byte(params["oauth_token"]), []byte(s.cfg.AccessToken)) == 1 &&
		verifySignature(r, form, params, s.cfg.ConsumerSecret, s.cfg.AccessTokenSecret)
	if !ok {
		s.log.Warn("xsandbox: unauthorized request", "path", r.URL.Path)
		return "", false
	}
	return params["oauth_consumer_key"], true
}

func (s *Sandbox) postTweet(w http.ResponseWriter, r *http.Request, consumerKey string) {
	var body struct {
		Text  *string `json:"text"`
		Media *struct {
			MediaIDs []string `json:"media_ids"`
		} `json:"media"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil || body.Text == nil {
		writeJSON(w, http.StatusBadRequest, problem{Title: "Invalid Request", Detail: "One or more parameters to your request was invalid.",
			Type: "https://api.twitter.com/2/problems/invalid-request", Errors: []problemEntry{{Message: "$.text: is missing but it is required"}}})
		return
	}
	var mediaIDs []string
	if body.Media != nil {
		mediaIDs = body.Media.MediaIDs
		if msg, ok := s.attachable(mediaIDs); !ok {
			invalidRequest(w, msg)
			return
		}
	}
	t, status, prob, rl, fault := s.createWithMedia(*body.Text, consumerKey, mediaIDs)
	if s.applyFault(w, r, t, fault) {
		return
	}
	writeRate(w, rl)
	if prob != nil {
		writeJSON(w, status, prob)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"data": map[string]any{"id": t.ID, "text": t.XText, "edit_history_tweet_ids": []string{t.ID}}})
}

func writeRate(w http.ResponseWriter, rl rateState) {
	w.Header().Set("x-rate-limit-limit", strconv.Itoa(rl.limit))
	w.Header().Set("x-rate-limit-remaining", strconv.Itoa(rl.remaining))
	w.Header().Set("x-rate-limit-reset", strconv.FormatInt(rl.reset.Unix(), 10))
}

// applyFault drops or holds the request when the fault says so, and reports whether it did.
func (s *Sandbox) applyFault(w http.ResponseWriter, r *http.Request, t Tweet, fault *Fault) bool {
	if t.ID != "" {
		s.log.Info("xsandbox: tweet posted", "id", t.ID)
	}
	if fault != nil {
		switch fault.Mode {
		case ModeCreateThenDrop:
			s.log.Info("xsandbox: fault: dropping the connection", "tweet_id", t.ID)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return true
				}
			}
			panic(http.ErrAbortHandler) // HTTP/2: abort the stream without an answer
		case ModeHang, ModeCreateThenHang:
			s.log.Info("xsandbox: fault: hanging until the client gives up", "tweet_id", t.ID)
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Minute):
			}
			return true
		}
	}
	return false
}

// userTweets serves GET /2/users/{id}/tweets as X does for what Herald uses: since_id or start_time (X
// refuses both together), max_results (5 to 100, default 10), pagination_token, tweet.fields=created_at;
// newest first, and only tweets older than the visibility delay.
func (s *Sandbox) userTweets(w http.ResponseWriter, r *http.Request, _ string) {
	if r.PathValue("id") != userID {
		writeJSON(w, http.StatusOK, map[string]any{"errors": []map[string]string{{"title": "Not Found Error", "detail": "Could not find user with id: [" + r.PathValue("id") + "].", "type": "https://api.twitter.com/2/problems/resource-not-found"}}})
		return
	}
	q := r.URL.Query()
	invalid := func(msg string) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]any{{"message": msg}}, "title": "Invalid Request",
			"detail": "One or more parameters to your request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"})
	}
	if q.Has("since_id") && q.Has("start_time") {
		invalid("Invalid use of 'since_id' or 'until_id' in conjunction with 'start_time' or 'end_time'.")
		return
	}
	var since uint64
	if v := q.Get("since_id"); v != "" {
		var err error
		if since, err = strconv.ParseUint(v, 10, 64); err != nil {
			invalid("The `since_id` query parameter value [" + v + "] is not valid")
			return
		}
	}
	var start time.Time
	if v := q.Get("start_time"); v != "" {
		var err error
		if start, err = time.Parse(time.RFC3339, v); err != nil {
			invalid("Invalid 'start_time':'" + v + "'. 'start_time' must be a valid RFC 3339 date-time")
			return
		}
	}
	limit := 10
	if v := q.Get("max_results"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 100 {
			invalid("The `max_results` query parameter value [" + v + "] is not between 5 and 100")
			return
		}
		limit = n
	}
	offset, _ := strconv.Atoi(q.Get("pagination_token"))
	withCreated := slices.Contains(strings.Split(q.Get("tweet.fields"), ","), "created_at")
	now := s.now()
	tweets := s.Tweets()
	slices.Reverse(tweets)
	var visible []Tweet
	for _, t := range tweets {
		id, _ := strconv.ParseUint(t.ID, 10, 64)
		if t.CreatedAt.Add(s.cfg.VisibilityDelay).After(now) || id <= since || t.CreatedAt.Before(start) {
			continue
		}
		visible = append(visible, t)
	}
	offset = min(max(offset, 0), len(visible))
	pageTweets := visible[offset:min(offset+limit, len(visible))]
	data := make([]map[string]any, len(pageTweets))
	for i, t := range pageTweets {
		data[i] = map[string]any{"id": t.ID, "text": t.XText, "edit_history_tweet_ids": []string{t.ID}}
		if withCreated {
			data[i]["created_at"] = t.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z")
		}
	}
	meta := map[string]any{"result_count": len(data)}
	if len(data) > 0 {
		meta["newest_id"], meta["oldest_id"] = pageTweets[0].ID, pageTweets[len(pageTweets)-1].ID
	}
	if offset+limit < len(visible) {
		meta["next_token"] = strconv.Itoa(offset + limit)
	}
	resp := map[string]any{"meta": meta}
	if len(data) > 0 {
		resp["data"] = data
	}
	writeJSON(w, http.StatusOK, resp)
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
{{range .Tweets}}<div class="tweet">{{.Text}}{{range .Media}}<img class="media" src="/_sandbox/media/{{.}}" alt="picture" style="display:block;max-width:100%;margin-top:.5em">{{end}}<div class="meta">#{{.ID}} · {{.CreatedAt.Format "2006-01-02 15:04:05 MST"}} · signed by consumer {{.ConsumerKey}}</div></div>
{{else}}<p><em>Nothing posted yet.</em></p>{{end}}
{{if .Served}}<h2>Faults served</h2><p class="meta">Injected with POST /_sandbox/faults, newest first.</p><ul>
{{range .Served}}<li class="meta">{{.At.Format "15:04:05.000"}} · {{.Mode}}{{if .Status}} {{.Status}}{{end}}{{if .TweetID}} · created #{{.TweetID}}{{else}} · nothing created{{end}}</li>
{{end}}</ul>{{end}}
</body></html>`))
