// Command render writes what Argo CD would apply to one cluster (or all), one file per
// Application, and an index (render.IndexFile) that later stages read:
//
//	go run ./policytest/cmd/render -cluster prod -out rendered/prod
//	go run ./policytest/cmd/render -cluster all -out rendered -keep-going
//
// (`make render CLUSTER=prod` runs the first; make verify the second, once, for every later
// stage.) Upstream chart Applications are rendered from their vendored packages
// (policytest/charts) the way Argo CD's repo server renders them. Findings are printed, one per
// line, and make the command exit 1, unless -keep-going (then they are left in the index for
// go test to report with every other finding). `helm template`'s output for a chart Application
// is kept in the result cache by a key over all of its inputs (render.TemplateKey;
// RESULT_CACHE=off renders every chart).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cloudlab/platform/policytest/internal/render"
)

func main() {
	cluster := flag.String("cluster", "", "cluster folder under clusters/ (dev, staging, prod), or all")
	out := flag.String("out", "", "output folder (emptied first); with -cluster all, the parent of one folder per cluster")
	repo := flag.String("repo", ".", "repository root")
	charts := flag.String("charts", "", "vendored charts (default: <repo>/policytest/charts)")
	helm := flag.String("helm", "helm", "helm binary (charts, and kustomize's helmCharts)")
	kubeVersion := flag.String("kube-version", "1.32.0", "Kubernetes version passed to helm, as Argo CD passes the cluster's")
	keepGoing := flag.Bool("keep-going", false, "exit 0 despite findings (they stay in index.json)")
	flag.Parse()
	if *cluster == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: render -cluster <dev|staging|prod|all> -out <folder> [-keep-going]")
		os.Exit(2)
	}
	opts := render.Options{RepoRoot: *repo, ChartDir: *charts, Helm: *helm, KubeVersion: *kubeVersion, TemplateCache: render.TemplateCacheDir()}
	clusters := []string{*cluster}
	outs := []string{*out}
	if *cluster == "all" {
		names, err := render.Clusters(*repo)
		if err != nil || len(names) == 0 {
			fmt.Fprintf(os.Stderr, "render: no clusters/*/bootstrap under %s: %v\n", *repo, err)
			os.Exit(1)
		}
		clusters, outs = names, nil
		for _, c := range names {
			outs = append(outs, filepath.Join(*out, c))
		}
	}
	// The clusters render concurrently (each also runs its charts' helm processes in parallel).
	lines := make([]string, len(clusters))
	findings := make([]int, len(clusters))
	errs := make([]error, len(clusters))
	var wg sync.WaitGroup
	for i, c := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines[i], findings[i], errs[i] = run(opts, c, outs[i])
		}()
	}
	wg.Wait()
	total := 0
	for i := range clusters {
		if errs[i] != nil {
			fmt.Fprintln(os.Stderr, "render:", errs[i])
			os.Exit(1)
		}
		fmt.Print(lines[i])
		total += findings[i]
	}
	if total > 0 && !*keepGoing {
		fmt.Fprintf(os.Stderr, "render: %d findings\n", total)
		os.Exit(1)
	}
}

// run renders one cluster into out and returns what to print and how many findings it has.
func run(opts render.Options, cluster, out string) (string, int, error) {
	start := time.Now()
	// The previous render's API versions are a good first guess (render.Options.APIVersions).
	if idx, err := render.ReadIndex(out); err == nil {
		opts.APIVersions = idx.APIVersions
	}
	c, err := render.LoadCluster(opts, cluster)
	if err != nil {
		return "", 0, err
	}
	if err := render.Write(c, out); err != nil {
		return "", 0, err
	}
	var b strings.Builder
	for _, f := range c.Findings {
		fmt.Fprintln(&b, f)
	}
	n := 0
	for _, a := range c.AllApps() {
		n += len(a.Objects)
	}
	fmt.Fprintf(&b, "rendered %s: %d objects of %d Applications into %s in %.1fs", cluster, n, len(c.AllApps()), out, time.Since(start).Seconds())
	switch t := c.Templates; {
	case opts.TemplateCache == "":
		fmt.Fprintf(&b, " (helm template: %d charts, result cache off)", t.Runs)
	default:
		fmt.Fprintf(&b, " (helm template: %d of %d charts cached (key %s))", t.Cached, t.Runs, t.Key)
	}
	b.WriteString("\n")
	return b.String(), len(c.Findings), nil
}
