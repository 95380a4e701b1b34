package k8s_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// secretOwners says which Deployments may read each Secret, in a volume or a variable. A Secret not
// listed here may be read by none: a new one needs a decision here first.
var secretOwners = map[string][]string{
	"herald-x-credentials":      {"herald-publisher"},
	"herald-publisher-seal":     {"herald-publisher"},
	"herald-approval-seal":      {"herald-approval"},
	"herald-gateway-nats":       {"herald-gateway"},
	"herald-approval-nats":      {"herald-approval"},
	"herald-publisher-nats":     {"herald-publisher"},
	"herald-gateway-client-tls": {"herald-gateway"},
	"herald-approval-tls":       {"herald-approval"},
	"herald-publisher-tls":      {"herald-publisher"},
	"herald-approval-postgres":  {"herald-approval"},
	"herald-publisher-postgres": {"herald-publisher"},
	"herald-smtp":               {"herald-approval"},
	"herald-csrf-key":           {"herald-gateway"},
	"herald-gateway-token":      {"herald-gateway", "herald-approval"},
	"herald-admin-token":        {"herald-approval", "herald-publisher"},
}

// The Deployments Herald consists of; each must exist in every rendering.
const (
	gateway   = "herald-gateway"
	approval  = "herald-approval"
	publisher = "herald-publisher"
)

// smtpPorts are the ports the approval service may use outside the cluster (mail submission).
var smtpPorts = []int32{25, 465, 587}

// check returns every broken invariant of a rendering.
func check(o *objects) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	names := map[string]bool{}
	for _, d := range o.Deployments {
		names[d.Name] = true
		errs = append(errs, checkPod(d)...)
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			fail("%s: fewer than 2 replicas", d.Name)
		}
		if n := countPDBs(o, d); n != 1 {
			fail("%s: %d PodDisruptionBudgets select its pods, want 1", d.Name, n)
		}
		if !hasService(o, d) {
			fail("%s: no Service selects its pods", d.Name)
		}
		errs = append(errs, checkSecrets(d)...)
		errs = append(errs, checkXVariables(o, d)...)
		errs = append(errs, checkNetwork(o, d)...)
	}
	for _, want := range []string{gateway, approval, publisher} {
		if !names[want] {
			fail("no Deployment %s", want)
		}
	}
	for _, p := range o.PDBs {
		if p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil {
			fail("PodDisruptionBudget %s: neither minAvailable nor maxUnavailable", p.Name)
		}
	}
	if !hasDefaultDeny(o) {
		fail("no NetworkPolicy denies all ingress and egress of every Herald pod")
	}
	return errs
}

func checkPod(d *appsv1.Deployment) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(d.Name+": "+format, a...)) }
	spec := d.Spec.Template.Spec
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		fail("pod seccomp profile is not RuntimeDefault")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		fail("pod shares a host namespace")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		fail("pod mounts a service account token it does not use")
	}
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	for _, c := range all {
		cfail := func(format string, a ...any) { fail("container "+c.Name+": "+format, a...) }
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		nonRoot := psc.RunAsNonRoot
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			cfail("runAsNonRoot is not true")
		}
		uid := psc.RunAsUser
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if uid != nil && *uid == 0 {
			cfail("runs as uid 0")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			cfail("allowPrivilegeEscalation is not false")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			cfail("root filesystem is writable")
		}
		if sc.Privileged != nil && *sc.Privileged {
			cfail("privileged")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			cfail("capabilities: drop ALL and add none")
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			cfail("seccomp profile overridden")
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[res]; !ok {
				cfail("no %s request", res)
			}
			if _, ok := c.Resources.Limits[res]; !ok {
				cfail("no %s limit", res)
			}
		}
		if err := pinned(c.Image); err != nil {
			cfail("%v", err)
		}
	}
	for _, c := range spec.Containers {
		cfail := func(format string, a ...any) { fail("container "+c.Name+": "+format, a...) }
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
			cfail("no preStop sleep: it would be stopped while the Service still sends it requests")
		} else if grace := spec.TerminationGracePeriodSeconds; grace == nil || *grace < c.Lifecycle.PreStop.Sleep.Seconds+20 {
			cfail("terminationGracePeriodSeconds leaves less than 20 s to drain after the preStop sleep")
		}
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				cfail("no HTTP %s probe", p.name)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				cfail("%s probe on %s, want %s", p.name, p.probe.HTTPGet.Path, p.path)
			}
			if !declaresPort(c, p.probe.HTTPGet.Port.String()) {
				cfail("%s probe on port %s, which the container does not declare", p.name, p.probe.HTTPGet.Port.String())
			}
		}
	}
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" {
		fail("no Prometheus scrape annotations")
	} else if !slices.ContainsFunc(spec.Containers, func(c corev1.Container) bool { return declaresPort(c, ann["prometheus.io/port"]) }) {
		fail("scrape port %q is not a container port", ann["prometheus.io/port"])
	}
	return errs
}

func declaresPort(c corev1.Container, port string) bool {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return true
		}
	}
	return false
}

// pinned refuses an image without a version (which means latest) or with the tag latest.
func pinned(image string) error {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
			return fmt.Errorf("image %s: malformed digest", image)
		}
		return nil
	}
	last := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	switch {
	case !ok || tag == "":
		return fmt.Errorf("image %s is not pinned by tag or digest", image)
	case tag == "latest":
		return fmt.Errorf("image %s uses the tag latest", image)
	}
	return nil
}

func countPDBs(o *objects, d *appsv1.Deployment) int {
	n := 0
	for _, p := range o.PDBs {
		if p.Namespace == d.Namespace && selects(p.Spec.Selector, d.Spec.Template.Labels) {
			n++
		}
	}
	return n
}

func hasService(o *objects, d *appsv1.Deployment) bool {
	for _, s := range o.Services {
		if s.Namespace == d.Namespace && len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			return true
		}
	}
	return false
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

// checkSecrets holds every Secret reference of a Deployment (volumes, projected volumes, variables) to
// secretOwners, and the X credentials' variables to the publisher.
func checkSecrets(d *appsv1.Deployment) []error {
	var errs []error
	use := func(secret, where string) {
		if !slices.Contains(secretOwners[secret], d.Name) {
			errs = append(errs, fmt.Errorf("%s: reads Secret %s (%s), which only %v may", d.Name, secret, where, secretOwners[secret]))
		}
	}
	spec := d.Spec.Template.Spec
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			use(v.Secret.SecretName, "volume "+v.Name)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					use(s.Secret.Name, "projected volume "+v.Name)
				}
			}
		}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				use(e.SecretRef.Name, "envFrom of "+c.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				use(e.ValueFrom.SecretKeyRef.Name, e.Name+" of "+c.Name)
			}
		}
	}
	return errs
}

// xCredentialVariables name or locate the X credentials.
var xCredentialVariables = []string{
	"HERALD_X_CONSUMER_KEY", "HERALD_X_CONSUMER_SECRET", "HERALD_X_ACCESS_TOKEN", "HERALD_X_ACCESS_TOKEN_SECRET",
	"HERALD_X_CONSUMER_KEY_FILE", "HERALD_X_CONSUMER_SECRET_FILE", "HERALD_X_ACCESS_TOKEN_FILE", "HERALD_X_ACCESS_TOKEN_SECRET_FILE",
}

// checkXVariables keeps the X credentials' variables (values or file paths) to the publisher.
func checkXVariables(o *objects, d *appsv1.Deployment) []error {
	var errs []error
	for _, c := range d.Spec.Template.Spec.Containers {
		names, err := envNames(o, d, c)
		if err != nil {
			errs = append(errs, err)
		}
		for name := range names {
			if slices.Contains(xCredentialVariables, name) && d.Name != publisher {
				errs = append(errs, fmt.Errorf("%s: container %s sets the X credential variable %s", d.Name, c.Name, name))
			}
		}
	}
	return errs
}

// policiesFor are the NetworkPolicies that select d's pods.
func policiesFor(o *objects, d *appsv1.Deployment) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, np := range o.NetworkPolicies {
		if np.Namespace == d.Namespace && selects(&np.Spec.PodSelector, d.Spec.Template.Labels) {
			out = append(out, np)
		}
	}
	return out
}

func hasType(np *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	return slices.Contains(np.Spec.PolicyTypes, t)
}

func hasDefaultDeny(o *objects) bool {
	for _, np := range o.NetworkPolicies {
		if hasType(np, networkingv1.PolicyTypeIngress) && hasType(np, networkingv1.PolicyTypeEgress) &&
			len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 &&
			selects(&np.Spec.PodSelector, map[string]string{"app.kubernetes.io/part-of": "herald"}) {
			return true
		}
	}
	return false
}

// checkNetwork holds d's pods to the design: isolated in both directions; reachable from anywhere only
// if it is the gateway; leaving the cluster only if it is the publisher (HTTPS) or the approval service
// (SMTP, to named addresses).
func checkNetwork(o *objects, d *appsv1.Deployment) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(d.Name+": "+format, a...)) }
	nps := policiesFor(o, d)
	if !slices.ContainsFunc(nps, func(np *networkingv1.NetworkPolicy) bool { return hasType(np, networkingv1.PolicyTypeIngress) }) {
		fail("no NetworkPolicy restricts its ingress")
	}
	if !slices.ContainsFunc(nps, func(np *networkingv1.NetworkPolicy) bool { return hasType(np, networkingv1.PolicyTypeEgress) }) {
		fail("no NetworkPolicy restricts its egress")
	}
	if !slices.ContainsFunc(nps, func(np *networkingv1.NetworkPolicy) bool {
		return hasType(np, networkingv1.PolicyTypeIngress) && hasType(np, networkingv1.PolicyTypeEgress) && len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0
	}) {
		fail("no NetworkPolicy denies its pods everything by default")
	}
	for _, need := range []struct {
		what string
		port int32
	}{{"DNS", 53}, {"NATS", 4222}} {
		if !slices.ContainsFunc(nps, func(np *networkingv1.NetworkPolicy) bool {
			return hasType(np, networkingv1.PolicyTypeEgress) && slices.ContainsFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
				return slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port != nil && p.Port.IntVal == need.port })
			})
		}) {
			fail("no NetworkPolicy lets its pods reach %s (port %d)", need.what, need.port)
		}
	}
	for _, np := range nps {
		if hasType(np, networkingv1.PolicyTypeIngress) {
			for _, r := range np.Spec.Ingress {
				open := len(r.From) == 0 || slices.ContainsFunc(r.From, func(p networkingv1.NetworkPolicyPeer) bool { return p.IPBlock != nil })
				if open && d.Name != gateway {
					fail("NetworkPolicy %s lets anyone in", np.Name)
				}
				if len(r.Ports) == 0 {
					fail("NetworkPolicy %s lets in on every port", np.Name)
				}
			}
		}
		if !hasType(np, networkingv1.PolicyTypeEgress) {
			continue
		}
		for _, r := range np.Spec.Egress {
			if len(r.To) == 0 {
				fail("NetworkPolicy %s lets it reach anything", np.Name)
				continue
			}
			if len(r.Ports) == 0 {
				fail("NetworkPolicy %s lets it out on every port", np.Name)
			}
			for _, peer := range r.To {
				if peer.IPBlock == nil {
					continue
				}
				prefix, err := netip.ParsePrefix(peer.IPBlock.CIDR)
				if err != nil {
					fail("NetworkPolicy %s: %v", np.Name, err)
					continue
				}
				switch d.Name {
				case publisher:
					if !onlyPorts(r.Ports, 443) {
						fail("NetworkPolicy %s lets it out of the cluster on ports other than 443", np.Name)
					}
				case approval:
					if !onlyPorts(r.Ports, smtpPorts...) {
						fail("NetworkPolicy %s lets it out of the cluster on ports other than SMTP's", np.Name)
					}
					if prefix.Bits() < 24 {
						fail("NetworkPolicy %s lets it send mail to %s: name the relay's addresses", np.Name, prefix)
					}
				default:
					fail("NetworkPolicy %s lets it out of the cluster (to %s): only the publisher and the approval service's mail may leave", np.Name, prefix)
				}
			}
		}
	}
	return errs
}

func onlyPorts(ports []networkingv1.NetworkPolicyPort, allowed ...int32) bool {
	if len(ports) == 0 {
		return false
	}
	for _, p := range ports {
		if p.Port == nil || p.EndPort != nil || !slices.Contains(allowed, p.Port.IntVal) {
			return false
		}
	}
	return true
}

// envNames are the variables container c of d gets: its env and the keys of the ConfigMaps in its
// envFrom, each with where it comes from. A ConfigMap missing from the rendering is an error.
func envNames(o *objects, d *appsv1.Deployment, c corev1.Container) (map[string]string, error) {
	names := map[string]string{}
	for _, e := range c.Env {
		names[e.Name] = "env"
	}
	var errs []error
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		i := slices.IndexFunc(o.ConfigMaps, func(cm *corev1.ConfigMap) bool {
			return cm.Name == from.ConfigMapRef.Name && cm.Namespace == d.Namespace
		})
		if i < 0 {
			errs = append(errs, fmt.Errorf("%s: container %s reads ConfigMap %s, which is not in the rendering", d.Name, c.Name, from.ConfigMapRef.Name))
			continue
		}
		for k := range o.ConfigMaps[i].Data {
			names[from.Prefix+k] = "ConfigMap " + from.ConfigMapRef.Name
		}
	}
	return names, errors.Join(errs...)
}
