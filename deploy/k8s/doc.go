// Package k8s holds no code: this module is Herald's Kubernetes deployment (a kustomize base, overlays,
// the NATS chart's values, the monitoring rules) and the tests that render and check it. It is a module
// of its own so that the kustomize and Kubernetes libraries stay out of the services' builds.
package k8s
