package httpapi

// ContentSecurityPolicy is the approval pages' CSP, for the external tests.
var ContentSecurityPolicy = contentSecurityPolicy
