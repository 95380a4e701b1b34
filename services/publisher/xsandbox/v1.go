package xsandbox

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
)

// v1.1 serves the endpoints of X API v1.1 that the publisher's v1.1 channel uses, with v1.1's JSON shapes
// and error bodies ({"errors": [{"code", "message"}]}).

// v1Time is v1.1's created_at format.
const v1Time = "Mon Jan 02 15:04:05 -0700 2006"

// v1SelfServeMessage is X's answer to v1.1 calls from self-serve access levels.
const v1SelfServeMessage = "You currently have access to a subset of X API V2 endpoints and limited v1.1 endpoints (e.g. media post, oauth) only. If you need access to this endpoint, you may need a different access level. You can learn more here: https://developer.x.com/en/portal/product"

func writeV1Error(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]any{{"code": code, "message": msg}}})
}

func v1User() map[string]any {
	id, _ := strconv.ParseInt(userID, 10, 64)
	return map[string]any{"id": id, "id_str": userID, "name": "Contoso (sandbox)", "screen_name": "contoso"}
}

func (s *Sandbox) v1User() map[string]any {
	u := v1User()
	u["screen_name"] = s.cfg.Username
	return u
}

func v1Tweet(t Tweet, extended bool) map[string]any {
	id, _ := strconv.ParseInt(t.ID, 10, 64)
	m := map[string]any{"id": id, "id_str": t.ID, "created_at": t.CreatedAt.UTC().Format(v1Time), "text": t.XText, "truncated": false,
		"user": map[string]any{"id_str": userID}}
	if extended {
		m["full_text"] = t.XText
		delete(m, "text")
	}
	return m
}

// v1Update serves POST statuses/update.json: the same rules and faults as POST /2/tweets.
func (s *Sandbox) v1Update(w http.ResponseWriter, r *http.Request, consumerKey string) {
	if s.cfg.SelfServe {
		writeV1Error(w, http.StatusForbidden, 453, v1SelfServeMessage)
		return
	}
	if !r.PostForm.Has("status") {
		writeV1Error(w, http.StatusBadRequest, 170, "Missing required parameter: status.")
		return
	}
	t, status, prob, rl, fault := s.create(r.PostForm.Get("status"), consumerKey)
	if s.applyFault(w, r, t, fault) {
		return
	}
	writeRate(w, rl)
	if prob == nil {
		writeJSON(w, http.StatusOK, v1Tweet(t, false))
		return
	}
	switch {
	case status == http.StatusTooManyRequests:
		writeV1Error(w, status, 88, "Rate limit exceeded")
	case status == http.StatusForbidden && prob.Detail == duplicateDetail:
		writeV1Error(w, status, 187, "Status is a duplicate.")
	case status == http.StatusForbidden:
		writeV1Error(w, status, 186, "Tweet needs to be a bit shorter.")
	case status == http.StatusBadRequest:
		writeV1Error(w, status, 170, "Missing required parameter: status.")
	case status == http.StatusServiceUnavailable:
		writeV1Error(w, status, 130, "Over capacity")
	case status >= 500:
		writeV1Error(w, status, 131, "Internal error")
	default:
		writeV1Error(w, status, 0, http2Title(status))
	}
}

// v1UserTimeline serves GET statuses/user_timeline.json: user_id or screen_name, since_id, max_id,
// count (default 20, at most 200), tweet_mode=extended; newest first, once visible.
func (s *Sandbox) v1UserTimeline(w http.ResponseWriter, r *http.Request, _ string) {
	if s.cfg.SelfServe {
		writeV1Error(w, http.StatusForbidden, 453, v1SelfServeMessage)
		return
	}
	q := r.URL.Query()
	if (q.Get("user_id") != "" && q.Get("user_id") != userID) || (q.Get("screen_name") != "" && q.Get("screen_name") != s.cfg.Username) {
		writeV1Error(w, http.StatusNotFound, 34, "Sorry, that page does not exist.")
		return
	}
	count := 20
	if n, err := strconv.Atoi(q.Get("count")); err == nil && n > 0 {
		count = min(n, 200)
	}
	since, _ := strconv.ParseUint(q.Get("since_id"), 10, 64)
	maxID, _ := strconv.ParseUint(q.Get("max_id"), 10, 64)
	extended := q.Get("tweet_mode") == "extended"
	now := s.now()
	tweets := s.Tweets()
	slices.Reverse(tweets)
	out := []map[string]any{}
	for _, t := range tweets {
		id, _ := strconv.ParseUint(t.ID, 10, 64)
		if t.CreatedAt.Add(s.cfg.VisibilityDelay).After(now) || id <= since || maxID != 0 && id > maxID {
			continue
		}
		if len(out) == count {
			break
		}
		out = append(out, v1Tweet(t, extended))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(out)
}
