package policytest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cloudlab/platform/policytest/internal/check"
)

// TestNoInfoInhibitorAlert: kube-prometheus-stack's InfoInhibitor alert is meant for a null
// receiver (its own description says so); outside dev our Alertmanager has none and would send
// it to platform chat every 4 hours, so the chart must not create it
// (platform/kube-prometheus-stack/values.yaml: defaultRules.disabled).
func TestNoInfoInhibitorAlert(t *testing.T) {
	for _, c := range repo(t).Clusters {
		for _, o := range check.AllObjects(c) {
			if o.GetKind() != "PrometheusRule" {
				continue
			}
			groups, _, _ := unstructured.NestedSlice(o.Object, "spec", "groups")
			for _, g := range groups {
				rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
				for _, r := range rules {
					assert.NotEqual(t, "InfoInhibitor", r.(map[string]any)["alert"], "%s: PrometheusRule %s/%s", c.Name, o.GetNamespace(), o.GetName())
				}
			}
		}
	}
}
