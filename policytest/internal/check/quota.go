package check

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/cloudlab/platform/policytest/internal/render"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Footprint is what a namespace's workloads may ask of its ResourceQuota at the worst moment
// the repository allows: every autoscaler at its maximum, every Deployment in the middle of a
// rollout (one surge pod), every Job and CronJob running once, every pod with its sidecar.
type Footprint struct {
	Pods, Claims                                    int64
	RequestsCPU, RequestsMemory, LimitsMem, Storage resource.Quantity
}

// Sidecar is the istio-proxy container's resources in a cluster.
type Sidecar struct {
	RequestsCPU, RequestsMemory, LimitsMemory resource.Quantity
}

// SidecarOf reads the sidecar size of a cluster from what istiod injects: global.proxy.resources
// of the values in the rendered istio-sidecar-injector ConfigMap (the istiod chart's defaults
// with our values files merged, as the injection template reads them). Zero when the cluster
// renders no injector.
func SidecarOf(c *render.Cluster) (Sidecar, error) {
	var s Sidecar
	for _, o := range AllObjects(c) {
		if o.GetKind() != "ConfigMap" || o.GetName() != "istio-sidecar-injector" {
			continue
		}
		raw, _, _ := unstructured.NestedString(o.Object, "data", "values")
		var values map[string]any
		if err := json.Unmarshal([]byte(raw), &values); err != nil {
			return s, fmt.Errorf("ConfigMap %s/%s data.values: %w", o.GetNamespace(), o.GetName(), err)
		}
		get := func(path ...string) resource.Quantity {
			v, _, _ := unstructured.NestedString(values, append([]string{"global", "proxy", "resources"}, path...)...)
			if v == "" {
				return resource.Quantity{}
			}
			return resource.MustParse(v)
		}
		s = Sidecar{get("requests", "cpu"), get("requests", "memory"), get("limits", "memory")}
	}
	return s, nil
}

// Quotas checks, for every namespace with a ResourceQuota, that the worst-case footprint of its
// workloads fits the quota: otherwise the API server refuses pods in the middle of a rollout or
// a scale-up, which no other check would notice before production.
func Quotas(c *render.Cluster) ([]render.Finding, error) {
	side, err := SidecarOf(c)
	if err != nil {
		return nil, err
	}
	objs := AllObjects(c)
	owner := map[*unstructured.Unstructured]string{}
	for _, a := range c.AllApps() {
		for _, o := range a.Objects {
			owner[o] = a.Name()
		}
	}
	meshed := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "Namespace" && o.GetLabels()["istio-injection"] == "enabled" {
			meshed[o.GetName()] = true
		}
	}
	var out []render.Finding
	for _, q := range objs {
		if q.GetKind() != "ResourceQuota" {
			continue
		}
		ns := q.GetNamespace()
		fp := NamespaceFootprint(objs, ns, side, meshed[ns])
		hard, _, _ := unstructured.NestedMap(q.Object, "spec", "hard")
		check := func(key string, need resource.Quantity) {
			raw, ok := hard[key]
			if !ok {
				return
			}
			limit := fmt.Sprint(raw)
			lq, err := resource.ParseQuantity(limit)
			if err != nil {
				out = append(out, render.ObjectFinding(c.Name, owner[q], q, CheckQuota, fmt.Sprintf("spec.hard[%s] %q is not a quantity", key, limit)))
				return
			}
			if need.Cmp(lq) > 0 {
				out = append(out, render.ObjectFinding(c.Name, owner[q], q, CheckQuota, fmt.Sprintf(
					"%s %s is below the %s the workloads of %s may need (HPA maximums, one rollout surge pod per Deployment, sidecars, every volume): raise it or shrink them",
					key, limit, need.String(), ns)))
			}
		}
		check("pods", *resource.NewQuantity(fp.Pods, resource.DecimalSI))
		check("persistentvolumeclaims", *resource.NewQuantity(fp.Claims, resource.DecimalSI))
		check("requests.storage", fp.Storage)
		check("requests.cpu", fp.RequestsCPU)
		check("requests.memory", fp.RequestsMemory)
		check("limits.memory", fp.LimitsMem)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// NamespaceFootprint sums the worst case of a namespace's Deployments and StatefulSets.
func NamespaceFootprint(objs []*unstructured.Unstructured, ns string, side Sidecar, meshed bool) Footprint {
	maxReplicas := map[string]int64{}
	for _, o := range objs {
		if o.GetKind() == "HorizontalPodAutoscaler" && o.GetNamespace() == ns {
			name, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "name")
			n, _, _ := unstructured.NestedInt64(o.Object, "spec", "maxReplicas")
			maxReplicas[name] = n
		}
	}
	var fp Footprint
	for _, o := range objs {
		if o.GetNamespace() == ns && o.GetKind() == "PersistentVolumeClaim" {
			fp.Claims++
			if v, ok, _ := unstructured.NestedString(o.Object, "spec", "resources", "requests", "storage"); ok {
				fp.Storage.Add(resource.MustParse(v))
			}
		}
		template := podTemplatePath(o.GetKind())
		if o.GetNamespace() != ns || template == nil {
			continue
		}
		n, ok := maxReplicas[o.GetName()]
		if !ok {
			n, ok, _ = unstructured.NestedInt64(o.Object, "spec", "replicas")
			if !ok || o.GetKind() == "CronJob" || o.GetKind() == "Job" {
				n = 1 // a Job's pod (CronJobs here forbid concurrent runs)
			}
		}
		if o.GetKind() == "Deployment" {
			n++ // maxSurge 1: one extra pod during a rollout
		}
		cpu, mem, lim := PodRequests(o, template)
		if meshed {
			cpu.Add(side.RequestsCPU)
			mem.Add(side.RequestsMemory)
			lim.Add(side.LimitsMemory)
		}
		fp.Pods += n
		// A StatefulSet's claims: one per template per replica (kept when it scales down).
		vcts, _, _ := unstructured.NestedSlice(o.Object, "spec", "volumeClaimTemplates")
		for _, v := range vcts {
			size, _, _ := unstructured.NestedString(v.(map[string]any), "spec", "resources", "requests", "storage")
			for i := int64(0); i < n && size != ""; i++ {
				fp.Claims++
				fp.Storage.Add(resource.MustParse(size))
			}
		}
		for i := int64(0); i < n; i++ {
			fp.RequestsCPU.Add(cpu)
			fp.RequestsMemory.Add(mem)
			fp.LimitsMem.Add(lim)
		}
	}
	return fp
}

// podTemplatePath is where a workload kind keeps its pod template (nil: not a workload).
func podTemplatePath(kind string) []string {
	switch kind {
	case "Deployment", "StatefulSet", "Job":
		return []string{"spec", "template"}
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template"}
	}
	return nil
}

// PodRequests sums the requests and memory limits of a workload's pod template: its containers,
// plus the largest init container where that is larger (as the scheduler counts).
func PodRequests(o *unstructured.Unstructured, template []string) (cpu, mem, memLimit resource.Quantity) {
	sum := func(field string) (c, m, l resource.Quantity) {
		cs, _, _ := unstructured.NestedSlice(o.Object, append(append([]string{}, template...), "spec", field)...)
		for _, x := range cs {
			cm, _ := x.(map[string]any)
			if v, ok, _ := unstructured.NestedString(cm, "resources", "requests", "cpu"); ok {
				c.Add(resource.MustParse(v))
			}
			if v, ok, _ := unstructured.NestedString(cm, "resources", "requests", "memory"); ok {
				m.Add(resource.MustParse(v))
			}
			if v, ok, _ := unstructured.NestedString(cm, "resources", "limits", "memory"); ok {
				l.Add(resource.MustParse(v))
			}
		}
		return
	}
	cpu, mem, memLimit = sum("containers")
	ic, im, il := sum("initContainers")
	if ic.Cmp(cpu) > 0 {
		cpu = ic
	}
	if im.Cmp(mem) > 0 {
		mem = im
	}
	if il.Cmp(memLimit) > 0 {
		memLimit = il
	}
	return
}
