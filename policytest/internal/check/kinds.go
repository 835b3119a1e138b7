package check

import (
	"github.com/cloudlab/platform/policytest/internal/render"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Scopes knows, for every kind, whether it is cluster-scoped and which Application's CRD
// defines it.
type Scopes struct {
	cluster map[schema.GroupKind]bool
	owner   map[string]*render.App // API group -> the Application that installs its CRDs
}

// ClusterScoped reports whether objects of the group and kind have no namespace.
func (s Scopes) ClusterScoped(gk schema.GroupKind) bool { return s.cluster[gk] }

// Owner is the Application that installs the CRDs of an API group (nil: none does).
func (s Scopes) Owner(group string) *render.App { return s.owner[group] }

// Kinds lists the cluster-scoped kind names (for the Rego input).
func (s Scopes) Kinds() []string {
	var out []string
	for gk, cluster := range s.cluster {
		if cluster {
			out = append(out, gk.Kind)
		}
	}
	return out
}

// ScopesOf reads the built-in cluster-scoped kinds and spec.scope of every CRD that the
// cluster's Applications install: the CRDs of the pinned charts are the ones validated against
// and the ones the cluster gets (one source).
func ScopesOf(c *render.Cluster) Scopes {
	s := Scopes{cluster: map[schema.GroupKind]bool{}, owner: map[string]*render.App{}}
	for gk := range render.BuiltinClusterScoped {
		s.cluster[gk] = true
	}
	for _, a := range c.AllApps() {
		for _, o := range a.Objects {
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			s.cluster[schema.GroupKind{Group: group, Kind: kind}] = scope == "Cluster"
			if _, seen := s.owner[group]; !seen {
				s.owner[group] = a
			}
		}
	}
	return s
}
