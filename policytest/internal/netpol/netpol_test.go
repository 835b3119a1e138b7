package netpol

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const fixture = `
apiVersion: v1
kind: Namespace
metadata: {name: data, labels: {tier: data}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: data}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: store, namespace: data}
spec:
  podSelector: {matchLabels: {app: store}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: apps}}
          podSelector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}
      ports: [{port: client}]
    - from: [{podSelector: {matchLabels: {app: store}}}]
      ports: [{port: 7000, endPort: 7002}]
  egress:
    - to: [{podSelector: {matchLabels: {app: store}}}]
      ports: [{port: 7000, endPort: 7002}]
`

func load(t *testing.T, docs string) *Cluster {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, d := range strings.Split(docs, "\n---\n") {
		u := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal([]byte(d), &u.Object))
		objs = append(objs, u)
	}
	c, err := New(objs)
	require.NoError(t, err)
	return c
}

func TestAllowed(t *testing.T) {
	c := load(t, fixture)
	store := Pod{Namespace: "data", Labels: map[string]string{"app": "store"}, NamedPorts: map[string]int32{"client": 6000}}
	web := Pod{Namespace: "apps", Labels: map[string]string{"app": "web"}}
	batch := Pod{Namespace: "apps", Labels: map[string]string{"app": "batch"}}
	other := Pod{Namespace: "data", Labels: map[string]string{"app": "other"}}

	assert.True(t, c.Allowed(web, store, 6000), "matchExpressions In + named port resolved on the destination")
	assert.False(t, c.Allowed(web, store, 6001), "only the named port")
	assert.False(t, c.Allowed(batch, store, 6000), "a label value outside the In list")
	assert.Equal(t, []int32{7000, 7001, 7002}, c.AllowedPorts(store, store, []int32{6000, 6999, 7000, 7001, 7002, 7003}), "members: the endPort range only")
	assert.False(t, c.Allowed(other, store, 7000), "default deny: other's egress is isolated and admits nothing")
	assert.True(t, c.Allowed(web, Pod{Namespace: "apps", Labels: map[string]string{"app": "api"}}, 80), "a namespace without policies isolates nothing")
}
