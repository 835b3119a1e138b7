package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudlab/platform/tools/rendered"
)

// TestRollingReplacementIsPlacementFree proves that the rolling drain does not depend on where
// the scheduler happened to put the pods: on three full 1-CPU nodes (testdata/drain), two
// PDB-protected Deployments sit with both replicas on drain-c — one because the other nodes are
// short of CPU, one held in drain-c's zone as zonal volumes hold a StatefulSet. Draining drain-c
// with nowhere for the replacements to go deadlocks on the PDBs; the scenario must pass anyway,
// as a real node-group update passes: a replacement node in the same zone comes first. It needs
// the control plane that `make simulate-all` builds (CONTROL_PLANE, KWOK).
func TestRollingReplacementIsPlacementFree(t *testing.T) {
	bin, kwok := os.Getenv("CONTROL_PLANE"), os.Getenv("KWOK")
	if bin == "" || kwok == "" {
		t.Fatal("CONTROL_PLANE and KWOK are not set: run `make simulate-all` (or make verify)")
	}
	ctx := context.Background()
	cp, err := StartControlPlane(ctx, t.TempDir(), bin, kwok, filepath.Join("..", "..", "kwok-stages.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	shape, err := loadShape("testdata/drain/simulation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateNodes(ctx, cp, shape); err != nil {
		t.Fatal(err)
	}
	applier := NewApplier(cp)
	for _, f := range []string{"testdata/drain/fillers.yaml", "testdata/drain/workloads.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := rendered.DecodeObjects(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if err := applier.Apply(ctx, o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		if _, nr, err := WaitReady(ctx, cp, time.Minute); err != nil || len(nr) > 0 {
			t.Fatalf("%s not ready: %v %v", f, err, nr)
		}
	}
	// The placement the fault needs: every replica of both Deployments on drain-c.
	s, err := Snap(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Pods {
		if (strings.HasPrefix(p.Name, "crowded-") || strings.HasPrefix(p.Name, "pinned-")) && p.Spec.NodeName != "drain-c" {
			t.Fatalf("fixture: %s placed on %s, not drain-c", p.Name, p.Spec.NodeName)
		}
	}

	r := &Run{cp: cp, Drains: true, DrainTimeout: 20 * time.Second, start: time.Now()}
	r.drainAll(ctx, shape, true)
	if r.failed {
		t.Fatalf("the rolling drain failed on a placement a real node-group update handles:\n%s", r.report.String())
	}
	if !strings.Contains(r.report.String(), "PASS rolling") {
		t.Fatalf("no rolling drain verdict:\n%s", r.report.String())
	}
	// Each node was replaced in its zone, and the replicas that were on drain-c run on its
	// replacement.
	s, err = Snap(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, n := range s.Nodes {
		nodes = append(nodes, n.Name+"@"+n.Labels[zoneLabel])
	}
	if got := strings.Join(nodes, " "); got != "drain-a-new@zone-a drain-b-new@zone-b drain-c-new@zone-c" {
		t.Fatalf("nodes after the rolling replacement: %s", got)
	}
	for _, p := range s.Pods {
		if (strings.HasPrefix(p.Name, "crowded-") || strings.HasPrefix(p.Name, "pinned-")) && p.Spec.NodeName != "drain-c-new" {
			t.Fatalf("%s runs on %q, not on drain-c's replacement", p.Name, p.Spec.NodeName)
		}
	}
}
