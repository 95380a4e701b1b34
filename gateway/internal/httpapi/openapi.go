package httpapi

import "net/http"

// openAPI serves the connector definition without authentication: Power Automate, Logic Apps and
// Zoho Flow import it from a URL before anyone has a key, and it holds nothing secret.
func (s *server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.definition)
}
