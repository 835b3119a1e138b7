package policytest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/architecture"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// The picture of docs/architecture.md sits between these markers; TestArchitectureDiagram
// regenerates it when UPDATE_DOCS=1 (`make docs`).
const (
	diagramBegin = "<!-- architecture picture: generated from the rendered clusters and services/*/values.yaml by `make docs`; do not edit -->\n```mermaid\n"
	diagramEnd   = "```\n<!-- end of architecture picture -->\n"
)

// TestArchitectureDiagram: docs/architecture.md's picture is the one drawn from the repository
// (architecture.Mermaid over every rendered cluster, its simulation.yaml and the catalog): an
// Application, a wave, a namespace, a call, a route or a store that changes without `make docs`
// fails here.
func TestArchitectureDiagram(t *testing.T) {
	in := architecture.Input{Catalog: catalog(t), Shapes: map[string]architecture.Shape{}}
	for _, env := range []string{"dev", "staging", "prod"} { // the order of promotion
		for _, c := range repo(t).Clusters {
			if c.Name == env {
				in.Clusters = append(in.Clusters, c)
			}
		}
	}
	require.Len(t, in.Clusters, len(repo(t).Clusters), "a cluster other than dev, staging and prod: place it here")
	for _, c := range in.Clusters {
		data, err := os.ReadFile(filepath.Join("../clusters", c.Name, "simulation.yaml"))
		require.NoError(t, err)
		var s architecture.Shape
		require.NoError(t, yaml.Unmarshal(data, &s))
		in.Shapes[c.Name] = s
	}
	want, err := architecture.Mermaid(in)
	require.NoError(t, err)
	for _, fact := range []string{"app_data_kafka[\"data-kafka 20 → ns cloudlab-data\"]", "svc_order --> svc_payment", "gateway -->|\"/api/orders\"| svc_order",
		"svc_order -.-> store_postgresql", "cluster_prod[\"prod: 6 nodes in 3 zones\"]", "wave_data --> wave_services"} {
		assert.Contains(t, want, fact, "the picture shows the repository's facts")
	}

	generatedPart(t, "../docs/architecture.md", diagramBegin, diagramEnd, want, "the picture")
}
