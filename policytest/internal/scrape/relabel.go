package scrape

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// relabeledPorts: the ports a PodMonitor endpoint without port or portNumber scrapes on w (one
// target per declared container port, then the endpoint's relabelings), and a description.
func relabeledPorts(w Workload, e map[string]any) ([]int32, string) {
	type target struct {
		container string
		port      int32
	}
	var ts []target
	names := make([]string, 0, len(w.containers))
	for n := range w.containers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, p := range w.containers[n] {
			ts = append(ts, target{n, p})
		}
	}
	what := "every declared port"
	rls, _ := e["relabelings"].([]any)
	for _, r := range rls {
		rl := r.(map[string]any)
		src, _ := rl["sourceLabels"].([]any)
		if len(src) == 0 {
			continue
		}
		first, _ := src[0].(string)
		action, _ := rl["action"].(string)
		re, _ := rl["regex"].(string)
		switch {
		case action == "keep" && first == "__meta_kubernetes_pod_container_name":
			var kept []target
			for _, t := range ts {
				if anchoredMatch(re, t.container) {
					kept = append(kept, t)
				}
			}
			ts, what = kept, "container "+re
		case action == "keep" && strings.HasPrefix(first, "__meta_kubernetes_pod_annotationpresent_"):
			key := annotationOf(strings.TrimPrefix(first, "__meta_kubernetes_pod_annotationpresent_"), w.annotations)
			if key == "" {
				return nil, what + ": the pod has no annotation for " + first
			}
		case action == "replace" && rl["targetLabel"] == "__address__" && first == "__meta_kubernetes_pod_annotation_prometheus_io_port":
			v := w.annotations["prometheus.io/port"]
			var n int32
			if _, err := fmt.Sscanf(v, "%d", &n); err != nil {
				return nil, what + ": the pod's annotation prometheus.io/port is " + fmt.Sprintf("%q", v)
			}
			for i := range ts {
				ts[i].port = n
			}
			if !strings.HasSuffix(what, annotatedPort) { // IPv6 and IPv4 forms: said once
				what += annotatedPort
			}
		}
	}
	seen := map[int32]bool{}
	var out []int32
	for _, t := range ts {
		if !seen[t.port] {
			seen[t.port] = true
			out = append(out, t.port)
		}
	}
	return out, what
}

const annotatedPort = ", on the port of annotation prometheus.io/port"

// anchoredMatch: Prometheus relabeling regexes are fully anchored.
func anchoredMatch(re, s string) bool {
	ok, err := regexp.MatchString("^(?:"+re+")$", s)
	return err == nil && ok
}

var unsafeLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// annotationOf finds the annotation whose Prometheus-sanitized name (every character outside
// [a-zA-Z0-9_] becomes _) is key.
func annotationOf(key string, annotations map[string]string) string {
	for k := range annotations {
		if unsafeLabelChars.ReplaceAllString(k, "_") == key {
			return k
		}
	}
	return ""
}
