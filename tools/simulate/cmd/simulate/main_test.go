package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/cloudlab/platform/tools/rendered"
)

// TestOversizedRequestFails proves the capacity scenario can fail: dev plus a pod that asks for
// more than dev's node has left must fail, naming the pod and its shortfall. It needs the
// control plane that `make simulate-all` builds (CONTROL_PLANE, KWOK) and rendered/dev.
func TestOversizedRequestFails(t *testing.T) {
	bin, kwok, istioctl := os.Getenv("CONTROL_PLANE"), os.Getenv("KWOK"), os.Getenv("ISTIOCTL")
	if bin == "" || kwok == "" || istioctl == "" {
		t.Fatal("CONTROL_PLANE, KWOK and ISTIOCTL are not set: run `make simulate-all` (or make verify)")
	}
	repo, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the rendered dev environment, so this run's report does not replace the real one.
	dir := t.TempDir()
	for _, name := range []string{rendered.IndexFile, rendered.ObjectsFile} {
		f := filepath.Join(repo, "rendered", "dev", name)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("no rendered/dev (run make render CLUSTER=dev): %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &Run{Cluster: "dev", Repo: repo, Rendered: dir, Bin: bin, Kwok: kwok, Istioctl: istioctl,
		Extra: "testdata/oversized.yaml", ReadyTimeout: 15 * time.Second, start: time.Now()}
	ok, err := r.Main(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Fatal("the simulation passed although a pod cannot fit")
	}
	report := r.report.String()
	want := regexp.MustCompile(`pod monitoring/oversized-\S+ requests cpu 3 memory 6144Mi; the freest node dev has cpu \d+m memory \d+Mi free: shortfall cpu \d+m, memory \d+Mi`)
	if !want.MatchString(report) {
		t.Fatalf("the report does not name the oversized pod and its shortfall:\n%s", report)
	}
}
