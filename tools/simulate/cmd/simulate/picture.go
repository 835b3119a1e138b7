package main

import (
	"context"
	"fmt"
	"html"
	"os"
	"sort"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// colours per namespace, so the picture reads at a glance.
var colours = map[string]string{
	"cloudlab": "#4e79a7", "cloudlab-data": "#f28e2b", "istio-system": "#59a14f", "istio-ingress": "#8cd17d",
	"monitoring": "#b07aa1", "argocd": "#edc948", "cert-manager": "#76b7b2", "external-secrets": "#ff9da7", "kube-system": "#bab0ac",
}

// writePicture draws one column per node: its memory allocatable as the column, each pod's
// memory request as a block coloured by namespace, and the free rest; CPU in the caption.
func writePicture(path, cluster string, use []NodeUse) error {
	const colW, gap, top, height = 150, 30, 60, 520
	var maxMem int64 = 1
	for _, u := range use {
		if m := u.AllocMem.Value(); m > maxMem {
			maxMem = m
		}
	}
	width := len(use)*(colW+gap) + gap
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`, width, top+height+120)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s: pods on nodes by memory requested (make simulate CLUSTER=%s)</text>`, gap, cluster, cluster)
	for i, u := range use {
		x := gap + i*(colW+gap)
		colH := int(float64(height) * float64(u.AllocMem.Value()) / float64(maxMem))
		y0 := top + height - colH
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#f4f4f4" stroke="#333"/>`, x, y0, colW, colH)
		pods := append(u.Pods[:0:0], u.Pods...)
		sort.Slice(pods, func(i, j int) bool { return pods[i].Namespace+pods[i].Name < pods[j].Namespace+pods[j].Name })
		y := float64(top + height)
		for _, p := range pods {
			_, m := requests(&p)
			h := float64(height) * float64(m.Value()) / float64(maxMem)
			y -= h
			c := colours[p.Namespace]
			if c == "" {
				c = "#999"
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s" stroke="#fff" stroke-width="0.5"><title>%s/%s %s</title></rect>`,
				x, y, colW, h, c, html.EscapeString(p.Namespace), html.EscapeString(p.Name), fmtMem(m))
			if h >= 11 {
				fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#fff" font-size="9">%s</text>`, x+3, y+h-3, html.EscapeString(trim(p.Name, 26)))
			}
		}
		free := u.AllocMem.DeepCopy()
		free.Sub(u.Mem)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`, x, top+height+16, u.Name)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, x, top+height+30, u.Zone)
		fmt.Fprintf(&b, `<text x="%d" y="%d">mem %s / %s (free %s)</text>`, x, top+height+44, fmtMem(u.Mem), fmtMem(u.AllocMem), fmtMem(free))
		fmt.Fprintf(&b, `<text x="%d" y="%d">cpu %dm / %dm, %d pods</text>`, x, top+height+58, u.CPU.MilliValue(), u.AllocCPU.MilliValue(), len(u.Pods))
	}
	lx := gap
	for _, ns := range []string{"cloudlab", "cloudlab-data", "istio-system", "istio-ingress", "monitoring", "argocd", "cert-manager", "external-secrets", "kube-system"} {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`, lx, top+height+80, colours[ns], lx+14, top+height+89, ns)
		lx += 14 + 7*len(ns) + 16
	}
	b.WriteString(`</svg>`)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func mustMilli(s string) int64 { q := resource.MustParse(s); return q.MilliValue() }
func mustMi(s string) int64    { q := resource.MustParse(s); return q.Value() >> 20 }

// scaleToHPAMinimum sets every HPA target to the HPA's minReplicas (no metrics server here).
func scaleToHPAMinimum(ctx context.Context, cp *ControlPlane) error {
	hpas, err := cp.Client.AutoscalingV2().HorizontalPodAutoscalers("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, h := range hpas.Items {
		min := int32(1)
		if h.Spec.MinReplicas != nil {
			min = *h.Spec.MinReplicas
		}
		if h.Spec.ScaleTargetRef.Kind != "Deployment" {
			continue
		}
		scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: h.Spec.ScaleTargetRef.Name, Namespace: h.Namespace}, Spec: autoscalingv1.ScaleSpec{Replicas: min}}
		if _, err := cp.Client.AppsV1().Deployments(h.Namespace).UpdateScale(ctx, h.Spec.ScaleTargetRef.Name, scale, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("scale %s/%s to %d: %w", h.Namespace, h.Spec.ScaleTargetRef.Name, min, err)
		}
	}
	return nil
}
