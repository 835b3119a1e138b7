package check

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudlab/platform/policytest/internal/render"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// builtinClusterScoped are the cluster-scoped kinds of Kubernetes 1.32 itself (`kubectl
// api-resources --namespaced=false`); CRD kinds come from the vendored CRDs' spec.scope.
var builtinClusterScoped = []schema.GroupKind{
	{Group: "", Kind: "Namespace"},
	{Group: "", Kind: "Node"},
	{Group: "", Kind: "PersistentVolume"},
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"},
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"},
	{Group: "apiregistration.k8s.io", Kind: "APIService"},
	{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"},
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "FlowSchema"},
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "PriorityLevelConfiguration"},
	{Group: "networking.k8s.io", Kind: "IngressClass"},
	{Group: "node.k8s.io", Kind: "RuntimeClass"},
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"},
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"},
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"},
	{Group: "storage.k8s.io", Kind: "CSIDriver"},
	{Group: "storage.k8s.io", Kind: "CSINode"},
	{Group: "storage.k8s.io", Kind: "StorageClass"},
	{Group: "storage.k8s.io", Kind: "VolumeAttachment"},
}

// Scopes knows, for every kind, whether it is cluster-scoped and whether a CRD defines it.
type Scopes struct {
	cluster map[schema.GroupKind]bool
	crd     map[schema.GroupKind]bool
}

// ClusterScoped reports whether objects of the group and kind have no namespace.
func (s Scopes) ClusterScoped(gk schema.GroupKind) bool { return s.cluster[gk] }

// IsCustom reports whether a vendored CRD defines the kind (so something must install it).
func (s Scopes) IsCustom(gk schema.GroupKind) bool { return s.crd[gk] }

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

// LoadScopes reads spec.scope of every vendored CRD under crdDir.
func LoadScopes(crdDir string) (Scopes, error) {
	s := Scopes{cluster: map[schema.GroupKind]bool{}, crd: map[schema.GroupKind]bool{}}
	for _, gk := range builtinClusterScoped {
		s.cluster[gk] = true
	}
	err := filepath.WalkDir(crdDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		objs, err := render.DecodeObjects(data)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			spec, _ := o.Object["spec"].(map[string]any)
			names, _ := spec["names"].(map[string]any)
			group, _ := spec["group"].(string)
			kind, _ := names["kind"].(string)
			scope, _ := spec["scope"].(string)
			gk := schema.GroupKind{Group: group, Kind: kind}
			s.cluster[gk] = scope == "Cluster"
			s.crd[gk] = true
		}
		return nil
	})
	return s, err
}
