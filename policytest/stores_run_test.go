package policytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudlab/platform/policytest/internal/podrun"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The data tier's own scripts — start, clone, bootstrap, backup, repair — executed exactly as
// rendered (internal/podrun), against real software where this machine's packages have it:
// PostgreSQL and Redis (for Valkey) from Debian, in sandboxes made by bubblewrap. Kafka,
// Elasticsearch and ClickHouse cannot be installed here: their start commands run against stubs
// that record what they were asked (policytest/testdata/standins), and the tests assert the
// decisions. Each scenario prints its name and what it measured.
//
// Missing software is a skip with one line saying how to install it; CI (.ci/run) installs it and
// sets CLOUDLAB_REQUIRE_STORE_SCRIPTS=1, which turns such a skip into a failure.

// storeScriptsNeed is what the real-software scenarios need, and the Debian packages that have it.
func storeScriptsNeed(t *testing.T, commands ...string) {
	t.Helper()
	var missing []string
	if why := podrun.Available(); why != "" {
		missing = append(missing, "bubblewrap ("+why+")")
	}
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			if matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + c); len(matches) > 0 {
				continue
			}
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("store scripts: SKIP %s: missing %s; install with: sudo apt-get install -y bubblewrap postgresql redis-server", t.Name(), strings.Join(missing, ", "))
	if os.Getenv("CLOUDLAB_REQUIRE_STORE_SCRIPTS") != "" {
		t.Fatal(msg)
	}
	fmt.Println(msg)
	t.Skip(msg)
}

func standins(t *testing.T, name string) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("testdata", "standins", name))
	require.NoError(t, err)
	return d
}

func postgresBin(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	require.NotEmpty(t, matches)
	return matches[len(matches)-1]
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b) + "'$x" // a quote and a dollar: the scripts must quote
}

// dataObjects is everything the cluster's data Applications render.
func dataObjects(c *render.Cluster) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, a := range c.Apps {
		if strings.HasPrefix(a.Name(), "data-") {
			out = append(out, a.Objects...)
		}
	}
	return out
}

func clusterNamed(t *testing.T, name string) *render.Cluster {
	t.Helper()
	for _, c := range repo(t).Clusters {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no cluster %s", name)
	return nil
}

func workload(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

// eventually polls f until it returns nil, at most d; it returns the seconds it took.
func eventually(t *testing.T, d time.Duration, what string, f func() error) float64 {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < d {
		if err = f(); err == nil {
			return time.Since(start).Seconds()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, d, err)
	return 0
}

// loopbackBlock is a /24 of 127.0.0.0/8 for one scenario's pod addresses ("127.x.y."), chosen at
// random so that two runs on one machine (two checkouts, two CI jobs) do not collide.
func loopbackBlock(t *testing.T) string {
	t.Helper()
	b := make([]byte, 2)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return fmt.Sprintf("127.%d.%d.", 16+int(b[0])%224, b[1])
}

func storesWorkDir(t *testing.T) string {
	t.Helper()
	// Not t.TempDir: the sandboxes' files belong to mapped users; removed by RemoveAll below.
	dir, err := os.MkdirTemp("", "store-scripts-")
	require.NoError(t, err)
	t.Cleanup(func() {
		if !t.Failed() {
			_ = os.RemoveAll(dir)
		} else {
			t.Logf("store scripts: logs kept in %s", dir)
		}
	})
	return dir
}

// runJob runs a Job's (or a CronJob's Job's) container as the Job controller would: again after a
// failure, up to backoffLimit more times (restartPolicy OnFailure or Never alike). It returns the
// output of the run that succeeded, and fails the test with every run's output when none did.
func runJob(t *testing.T, ctx context.Context, job *unstructured.Unstructured, pod *podrun.Pod, container string) string {
	t.Helper()
	path := []string{"spec", "backoffLimit"}
	if job.GetKind() == "CronJob" {
		path = []string{"spec", "jobTemplate", "spec", "backoffLimit"}
	}
	limit, found, _ := unstructured.NestedInt64(job.Object, path...)
	if !found {
		limit = 6 // the Job API's default
	}
	var outs []string
	for attempt := int64(0); attempt <= limit; attempt++ {
		out, err := pod.Run(ctx, container, nil, 3*time.Minute)
		if err == nil {
			return out
		}
		outs = append(outs, fmt.Sprintf("attempt %d: %v", attempt+1, err))
		time.Sleep(time.Second)
	}
	t.Fatalf("%s %s failed %d times:\n%s", job.GetKind(), job.GetName(), limit+1, strings.Join(outs, "\n"))
	return ""
}
