package realnode

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// ProbeLabel marks every pod the launcher adds to probe from (never selected by a Service).
const ProbeLabel = "cloudlab.io/probe"

// Pin places a workload's pods on the real node (nodeSelector and a toleration of its taint):
// the only change made to dev's Deployments.
func Pin(o *unstructured.Unstructured, node string) {
	spec, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
	sel, _ := spec["nodeSelector"].(map[string]any)
	if sel == nil {
		sel = map[string]any{}
	}
	sel["kubernetes.io/hostname"] = node
	spec["nodeSelector"] = sel
	tol, _ := spec["tolerations"].([]any)
	spec["tolerations"] = append(tol, map[string]any{"key": TaintKey, "operator": "Exists", "effect": "NoSchedule"})
	_ = unstructured.SetNestedMap(o.Object, spec, "spec", "template", "spec")
}

func (n *Node) pinned(spec *corev1.PodSpec) {
	spec.NodeSelector = map[string]string{"kubernetes.io/hostname": n.cfg.NodeName}
	spec.Tolerations = []corev1.Toleration{{Key: TaintKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
}

// restrictedContainer is a container security context that Pod Security "restricted" admits.
func restrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
}

func restrictedPod() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)), RunAsGroup: ptr.To(int64(65532)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
}

// Corefile answers the cluster's names only: with no forward plugin, no query leaves the machine.
const Corefile = `.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
}
`

// DeployDNS runs CoreDNS on the real node as a cluster's DNS add-on does: Deployment and
// Service kube-dns (10.96.0.10, the kubelet's clusterDNS) in kube-system, pods labelled
// k8s-app=kube-dns (what the namespaces' allow-dns-egress NetworkPolicies name).
func (n *Node) DeployDNS(ctx context.Context) error {
	c := n.cfg.Client
	ns := "kube-system"
	labels := map[string]string{"k8s-app": "kube-dns"}
	part := map[string]string{TaintKey: "true"} // not part of the environment: the simulation's judges skip it
	if err := created(c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "coredns"}}, metav1.CreateOptions{})); err != nil {
		return err
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
	}}
	if err := created(c.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})); err != nil {
		return err
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:coredns"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "coredns", Namespace: ns}}}
	if err := created(c.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns"}, Data: map[string]string{"Corefile": Corefile}}
	if err := created(c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})); err != nil {
		return err
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Labels: labels}, Spec: corev1.ServiceSpec{
		ClusterIP: DNSService, Selector: labels, Ports: []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)}}}}
	if err := created(c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})); err != nil {
		return err
	}
	pod := corev1.PodSpec{
		ServiceAccountName: "coredns", DNSPolicy: corev1.DNSDefault, PriorityClassName: "system-cluster-critical",
		SecurityContext: restrictedPod(),
		Containers: []corev1.Container{{
			Name: "coredns", Image: n.images.CoreDNS, ImagePullPolicy: corev1.PullNever,
			Args: []string{"-conf", "/etc/coredns/Corefile"},
			Ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8181)}}, PeriodSeconds: 1},
			LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 10},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")}},
			SecurityContext: restrictedContainer(),
			VolumeMounts:    []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
		}},
		Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "coredns"}}}}},
	}
	// Port 53 as a non-root user: the namespaced, "safe" sysctl instead of a capability.
	pod.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "53"}}
	n.pinned(&pod)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Labels: part}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod}}}
	return created(c.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}))
}

// created passes a Create's error on, unless the object already exists.
func created[T any](_ T, err error) error {
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// CreateSecrets makes the Secrets that External Secrets would make from each ExternalSecret of
// the namespace (the services' store credentials), with generated values; it returns their names.
func (n *Node) CreateSecrets(ctx context.Context, objs []*unstructured.Unstructured, ns string) ([]string, error) {
	var names []string
	for _, o := range objs {
		if o.GetKind() != "ExternalSecret" || o.GetNamespace() != ns {
			continue
		}
		name, _, _ := unstructured.NestedString(o.Object, "spec", "target", "name")
		if name == "" {
			name = o.GetName()
		}
		data := map[string][]byte{}
		items, _, _ := unstructured.NestedSlice(o.Object, "spec", "data")
		for _, it := range items {
			if key, ok := it.(map[string]any)["secretKey"].(string); ok {
				b := make([]byte, 18)
				_, _ = rand.Read(b)
				data[key] = []byte(base64.RawURLEncoding.EncodeToString(b))
			}
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"cloudlab.io/generated-by": "make-simulate"}}, Data: data}
		if err := created(n.cfg.Client.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// ProbePod is a pod that idles and is probed from (exec): it carries labels (an identity the
// NetworkPolicies name) and is owned by a ConfigMap so that no ReplicaSet whose selector matches
// those labels adopts it.
func (n *Node) ProbePod(ctx context.Context, ns, name string, labels map[string]string) error {
	c := n.cfg.Client
	if _, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil // made earlier in this run
	}
	owner, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe-owner-" + name}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	l := map[string]string{ProbeLabel: name}
	for k, v := range labels {
		l[k] = v
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{AutomountServiceAccountToken: ptr.To(false), SecurityContext: restrictedPod(), TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{n.probeContainer()}}}
	n.pinned(&pod.Spec)
	_, err = c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	return err
}

func (n *Node) probeContainer() corev1.Container {
	return corev1.Container{Name: "probe", Image: n.images.Probe, ImagePullPolicy: corev1.PullNever, Args: []string{"sleep"},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}},
		SecurityContext: restrictedContainer()}
}

// AddProbe adds the probe as an ephemeral container to a running pod (as `kubectl debug`
// does): connections then leave from that very pod, with its labels, ServiceAccount and IP, and
// no label or port of the pod changes.
func (n *Node) AddProbe(ctx context.Context, pod *corev1.Pod) error {
	for _, ec := range pod.Spec.EphemeralContainers {
		if ec.Name == "probe" {
			return nil
		}
	}
	pc := n.probeContainer()
	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: pc.Name, Image: pc.Image, ImagePullPolicy: pc.ImagePullPolicy, Args: pc.Args, SecurityContext: pc.SecurityContext}})
	_, err := n.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateEphemeralContainers(ctx, pod.Name, pod, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("ephemeral probe in %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
