package xsandbox

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what OAuth 1.0a, and so X, uses
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// oauthParams parses an `Authorization: OAuth k="v", ...` header.
func oauthParams(header string) (map[string]string, error) {
	rest, ok := strings.CutPrefix(header, "OAuth ")
	if !ok {
		return nil, errors.New("authorization header is not OAuth")
	}
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, errors.New("malformed OAuth parameter")
		}
		v = strings.Trim(v, `"`)
		dk, err1 := url.PathUnescape(k)
		dv, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, errors.New("malformed OAuth parameter encoding")
		}
		params[dk] = dv
	}
	for _, required := range []string{"oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_signature", "oauth_timestamp", "oauth_nonce", "oauth_version"} {
		if params[required] == "" {
			return nil, errors.New("missing " + required)
		}
	}
	if params["oauth_signature_method"] != "HMAC-SHA1" || params["oauth_version"] != "1.0" {
		return nil, errors.New("unsupported OAuth signature method or version")
	}
	return params, nil
}

// verifySignature recomputes the HMAC-SHA1 signature of r (RFC 5849 section 3.4) and compares it with the
// one the client sent. JSON bodies are not part of the signature; query and form parameters are.
func verifySignature(r *http.Request, form url.Values, params map[string]string, consumerSecret, tokenSecret string) bool {
	var pairs []string
	add := func(k, v string) { pairs = append(pairs, encode(k)+"="+encode(v)) }
	for k, v := range params {
		if k != "oauth_signature" && k != "realm" {
			add(k, v)
		}
	}
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			add(k, v)
		}
	}
	for k, vs := range form {
		for _, v := range vs {
			add(k, v)
		}
	}
	sort.Strings(pairs)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := strings.ToUpper(r.Method) + "&" + encode(scheme+"://"+strings.ToLower(r.Host)+r.URL.EscapedPath()) + "&" + encode(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(encode(consumerSecret)+"&"+encode(tokenSecret)))
	mac.Write([]byte(base))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return subtle.ConstantTimeCompare([]byte(want), []byte(params["oauth_signature"])) == 1
}

// encode is RFC 3986 percent-encoding as OAuth 1.0a defines it: everything but unreserved characters.
func encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
	}
	return b.String()
}
