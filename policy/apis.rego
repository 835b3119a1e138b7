# Nothing that Kubernetes 1.32 or a later release has deprecated or removed, and only the
# served, current versions of the CRD APIs we target (Istio v1, External Secrets v1, VPA v1).
# Schema validation already rejects versions that are no longer served; this policy also
# catches the ones still served but deprecated, with the replacement to use.
package cloudlab.apis

import data.lib

# replacement[apiVersion][kind] (kind "*": every kind of that apiVersion) is what to use instead.
replacement := {
	"v1": {"Endpoints": "discovery.k8s.io/v1 EndpointSlice (Endpoints is deprecated since 1.33)"},
	"policy/v1beta1": {"*": "policy/v1"},
	"autoscaling/v2beta1": {"*": "autoscaling/v2"},
	"autoscaling/v2beta2": {"*": "autoscaling/v2"},
	"batch/v1beta1": {"*": "batch/v1"},
	"networking.k8s.io/v1beta1": {"*": "networking.k8s.io/v1"},
	"discovery.k8s.io/v1beta1": {"*": "discovery.k8s.io/v1"},
	"flowcontrol.apiserver.k8s.io/v1beta2": {"*": "flowcontrol.apiserver.k8s.io/v1"},
	"flowcontrol.apiserver.k8s.io/v1beta3": {"*": "flowcontrol.apiserver.k8s.io/v1 (v1beta3 is removed in 1.32)"},
	"storage.k8s.io/v1beta1": {"*": "storage.k8s.io/v1"},
	"rbac.authorization.k8s.io/v1beta1": {"*": "rbac.authorization.k8s.io/v1"},
	"admissionregistration.k8s.io/v1beta1": {"*": "admissionregistration.k8s.io/v1"},
	"apiextensions.k8s.io/v1beta1": {"*": "apiextensions.k8s.io/v1"},
	"networking.istio.io/v1alpha3": {k: "networking.istio.io/v1" | some k in istio_v1_networking},
	"networking.istio.io/v1beta1": {k: "networking.istio.io/v1" | some k in istio_v1_networking},
	"security.istio.io/v1beta1": {"*": "security.istio.io/v1"},
	"telemetry.istio.io/v1alpha1": {"*": "telemetry.istio.io/v1"},
	"external-secrets.io/v1beta1": {"*": "external-secrets.io/v1"},
	"external-secrets.io/v1alpha1": {"ExternalSecret": "external-secrets.io/v1", "SecretStore": "external-secrets.io/v1", "ClusterSecretStore": "external-secrets.io/v1"},
	"autoscaling.k8s.io/v1beta2": {"*": "autoscaling.k8s.io/v1"},
}

# The Istio networking kinds that have a v1 API (EnvoyFilter and ProxyConfig do not).
istio_v1_networking := {"DestinationRule", "Gateway", "ServiceEntry", "Sidecar", "VirtualService", "WorkloadEntry", "WorkloadGroup"}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	use := instead(item.obj.apiVersion, item.obj.kind)
	msg := sprintf("apiVersion %s is deprecated or removed: use %s", [item.obj.apiVersion, use])
}

instead(api, kind) := replacement[api][kind]

instead(api, kind) := replacement[api]["*"] if not replacement[api][kind]
