// Package netpol decides whether the NetworkPolicies of a rendered cluster let one pod open a
// TCP connection to another, with the semantics of the Kubernetes API
// (https://kubernetes.io/docs/concepts/services-networking/network-policies/):
//
//   - a pod is isolated for a direction only if some policy of its namespace selects it and has
//     that policy type; a non-isolated pod allows everything in that direction;
//   - policyTypes defaults to [Ingress], plus Egress when the policy has egress rules;
//   - a rule with no peers admits every peer, with no ports every port; a peer with a
//     podSelector alone means pods of the policy's namespace, with a namespaceSelector alone
//     every pod of the selected namespaces, with both the selected pods of those namespaces;
//   - a named port is resolved against the destination pod's container ports; endPort makes a
//     range.
//
// ipBlock peers never match a pod here: the platform's policies use them only for addresses
// outside the cluster (the cluster's own ranges are excepted), which is what they mean on a
// real cluster with pod IPs inside those private ranges.
package netpol

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Pod is a pod as the network sees it: where it runs, its labels and its named container ports.
type Pod struct {
	Namespace string
	Labels    map[string]string
	// NamedPorts maps a container port's name to its number (named ports in policies resolve
	// against the destination pod).
	NamedPorts map[string]int32
}

// Cluster holds the NetworkPolicies and the namespace labels of one rendered cluster.
type Cluster struct {
	policies   []networkingv1.NetworkPolicy
	namespaces map[string]labels.Set
}

// New reads every NetworkPolicy and Namespace among objs. Namespaces that are not among objs
// still carry the label kubernetes.io/metadata.name (the API server sets it on every
// namespace). An error means an object could not be read as its type.
func New(objs []*unstructured.Unstructured) (*Cluster, error) {
	c := &Cluster{namespaces: map[string]labels.Set{}}
	for _, o := range objs {
		switch o.GetKind() {
		case "NetworkPolicy":
			var np networkingv1.NetworkPolicy
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &np); err != nil {
				return nil, fmt.Errorf("NetworkPolicy %s/%s: %w", o.GetNamespace(), o.GetName(), err)
			}
			c.policies = append(c.policies, np)
		case "Namespace":
			set := labels.Set{}
			for k, v := range o.GetLabels() {
				set[k] = v
			}
			set["kubernetes.io/metadata.name"] = o.GetName()
			c.namespaces[o.GetName()] = set
		}
	}
	return c, nil
}

func (c *Cluster) namespaceLabels(name string) labels.Set {
	if set, ok := c.namespaces[name]; ok {
		return set
	}
	return labels.Set{"kubernetes.io/metadata.name": name}
}

// Allowed reports whether src may open a TCP connection to dst on port: dst's ingress admits
// src and src's egress admits dst.
func (c *Cluster) Allowed(src, dst Pod, port int32) bool {
	return c.admits(networkingv1.PolicyTypeEgress, src, dst, dst, port) &&
		c.admits(networkingv1.PolicyTypeIngress, dst, src, dst, port)
}

// AllowedPorts is the subset of candidates on which src may connect to dst, in the given order.
func (c *Cluster) AllowedPorts(src, dst Pod, candidates []int32) []int32 {
	var out []int32
	for _, p := range candidates {
		if c.Allowed(src, dst, p) {
			out = append(out, p)
		}
	}
	return out
}

// admits: do the policies selecting self, of the given type, let traffic to or from peer through
// on port of the destination pod dst?
func (c *Cluster) admits(typ networkingv1.PolicyType, self, peer, dst Pod, port int32) bool {
	isolated := false
	for i := range c.policies {
		np := &c.policies[i]
		if np.Namespace != self.Namespace || !hasType(np, typ) || !selects(&np.Spec.PodSelector, self.Labels) {
			continue
		}
		isolated = true
		if typ == networkingv1.PolicyTypeIngress {
			for _, r := range np.Spec.Ingress {
				if c.peersMatch(r.From, np.Namespace, peer) && portsMatch(r.Ports, dst, port) {
					return true
				}
			}
		} else {
			for _, r := range np.Spec.Egress {
				if c.peersMatch(r.To, np.Namespace, peer) && portsMatch(r.Ports, dst, port) {
					return true
				}
			}
		}
	}
	return !isolated
}

func hasType(np *networkingv1.NetworkPolicy, typ networkingv1.PolicyType) bool {
	types := np.Spec.PolicyTypes
	if len(types) == 0 {
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, t := range types {
		if t == typ {
			return true
		}
	}
	return false
}

func selects(sel *metav1.LabelSelector, set map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false // an invalid selector is refused by the API server; schema checks report it
	}
	return s.Matches(labels.Set(set))
}

func (c *Cluster) peersMatch(peers []networkingv1.NetworkPolicyPeer, policyNamespace string, pod Pod) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.IPBlock != nil {
			continue
		}
		if p.NamespaceSelector != nil {
			if !selects(p.NamespaceSelector, c.namespaceLabels(pod.Namespace)) {
				continue
			}
		} else if pod.Namespace != policyNamespace {
			continue
		}
		if p.PodSelector == nil || selects(p.PodSelector, pod.Labels) {
			return true
		}
	}
	return false
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, dst Pod, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true
		}
		n := p.Port.IntVal
		if p.Port.Type == intstr.String { // a named port: the destination pod's container port of that name
			var ok bool
			if n, ok = dst.NamedPorts[p.Port.StrVal]; !ok {
				continue
			}
		}
		end := n
		if p.EndPort != nil {
			end = *p.EndPort
		}
		if port >= n && port <= end {
			return true
		}
	}
	return false
}

// TemplatePod is the pod a workload object (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
// CronJob) creates, as the network sees it; ok is false for any other kind.
func TemplatePod(o *unstructured.Unstructured) (pod Pod, ok bool) {
	path := []string{"spec", "template"}
	switch o.GetKind() {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template"}
	default:
		return Pod{}, false
	}
	tmpl, found, err := unstructured.NestedMap(o.Object, path...)
	if !found || err != nil {
		return Pod{}, false
	}
	var pt corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &pt); err != nil {
		return Pod{}, false
	}
	pod = Pod{Namespace: o.GetNamespace(), Labels: pt.Labels, NamedPorts: map[string]int32{}}
	for _, c := range append(pt.Spec.InitContainers, pt.Spec.Containers...) {
		for _, p := range c.Ports {
			if p.Name != "" {
				pod.NamedPorts[p.Name] = p.ContainerPort
			}
		}
	}
	return pod, true
}
