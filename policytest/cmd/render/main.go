// Command render writes what Argo CD would apply to one cluster, one file per Application:
//
//	go run ./policytest/cmd/render -cluster prod -out rendered/prod
//
// (`make render CLUSTER=prod` runs it). An upstream chart Application is rendered from its
// vendored package (policytest/charts) as Argo CD's repo server renders it. Next to the files,
// api-versions.txt lists the CRD API versions the charts were rendered with.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudlab/platform/policytest/internal/render"
	"sigs.k8s.io/yaml"
)

func main() {
	cluster := flag.String("cluster", "", "cluster folder under clusters/ (dev, staging, prod), or all")
	out := flag.String("out", "", "output folder (emptied first); with -cluster all, the parent of one folder per cluster")
	repo := flag.String("repo", ".", "repository root")
	helm := flag.String("helm", "helm", "helm binary for kustomize's helmCharts")
	kubeVersion := flag.String("kube-version", "1.32.0", "Kubernetes version passed to helm, as Argo CD passes the cluster's")
	flag.Parse()
	if *cluster == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: render -cluster <dev|staging|prod> -out <folder>")
		os.Exit(2)
	}
	opts := render.Options{RepoRoot: *repo, Helm: *helm, KubeVersion: *kubeVersion}
	clusters := []string{*cluster}
	outs := []string{*out}
	if *cluster == "all" {
		names, err := render.Clusters(*repo)
		if err != nil {
			fmt.Fprintln(os.Stderr, "render:", err)
			os.Exit(1)
		}
		clusters, outs = names, nil
		for _, c := range names {
			outs = append(outs, filepath.Join(*out, c))
		}
	}
	for i, c := range clusters {
		if err := run(opts, c, outs[i]); err != nil {
			fmt.Fprintln(os.Stderr, "render:", err)
			os.Exit(1)
		}
	}
}

func run(opts render.Options, cluster, out string) error {
	// The previous render's API versions are a good first guess (render.Options.APIVersions).
	if data, err := os.ReadFile(filepath.Join(out, "api-versions.txt")); err == nil {
		opts.APIVersions = strings.Fields(string(data))
	}
	c, err := render.LoadCluster(opts, cluster)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, app := range c.AllApps() {
		var b strings.Builder
		fmt.Fprintf(&b, "# Application %s (wave %d) of cluster %s\n", app.Name(), app.Wave, cluster)
		if app.Chart != nil {
			fmt.Fprintf(&b, "# Upstream chart %s %s from %s (vendored: %s), rendered with:\n", app.Chart.Chart, app.Chart.TargetRevision, app.Chart.RepoURL, render.ChartFile(render.ChartDir, app.Chart.Chart, app.Chart.TargetRevision))
			for _, vf := range app.ValueFiles {
				fmt.Fprintf(&b, "#   values: %s\n", vf)
			}
		}
		for _, o := range app.Objects {
			y, err := yaml.Marshal(o.Object)
			if err != nil {
				return err
			}
			b.WriteString("---\n")
			b.Write(y)
		}
		if err := os.WriteFile(filepath.Join(out, app.Name()+".yaml"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(out, "api-versions.txt"), []byte(strings.Join(c.APIVersions, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	for _, f := range c.Findings {
		fmt.Fprintln(os.Stderr, f)
	}
	fmt.Printf("rendered %s: %d Applications into %s\n", cluster, len(c.AllApps()), out)
	if len(c.Findings) > 0 {
		return fmt.Errorf("%d findings while rendering %s", len(c.Findings), cluster)
	}
	return nil
}
