package check

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/cloudlab/platform/policytest/internal/render"
)

// Config says what to verify and with which tools.
type Config struct {
	RepoRoot  string // repository (or fixture) whose clusters/ are verified
	PolicyDir string // the Rego policies and their data
	ChartDir  string // vendored charts (default: <RepoRoot>/policytest/charts)
	// Rendered, when set, is a folder the render command filled (one sub-folder per cluster,
	// render.Write): its objects are read instead of rendering again.
	Rendered    string
	Helm        string // helm binary for kustomize's Helm inflation
	Validator   string // kubectl-validate binary
	KubeVersion string // e.g. "1.32"
}

// Stage is one step of the verification, with what it found and how long it took.
type Stage struct {
	Name     string
	Findings []render.Finding
	Took     time.Duration
	Note     string // e.g. how much came from the result cache
}

// Report is the outcome of Verify.
type Report struct {
	Clusters []*render.Cluster
	Stages   []Stage
	// Excused counts, per entry of policy/exceptions.yaml (by index), the findings it excused in
	// all clusters together.
	Excused map[int]int

	note string // the running stage's note
}

// Findings is every finding of every stage.
func (r *Report) Findings() []render.Finding {
	var out []render.Finding
	for _, s := range r.Stages {
		out = append(out, s.Findings...)
	}
	return out
}

// Verify renders every cluster of the repository the way Argo CD would, then checks the Argo CD
// structure, validates every object's schema and evaluates every policy. An error means the
// verification itself could not run; what is wrong with the repository comes back as findings.
func Verify(ctx context.Context, cfg Config) (*Report, error) {
	r, err := Load(cfg)
	if err != nil {
		return nil, err
	}
	return r, r.Check(ctx, cfg)
}

// stage runs one stage of the verification and records it.
func (r *Report) stage(name string, fn func() ([]render.Finding, error)) error {
	start := time.Now()
	f, err := fn()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r.Stages = append(r.Stages, Stage{Name: name, Findings: f, Took: time.Since(start), Note: r.note})
	r.note = ""
	return nil
}

// Load is Verify's first stage alone: every cluster rendered (or read from cfg.Rendered), with
// the render's findings; for tests that only read the rendered objects.
func Load(cfg Config) (*Report, error) {
	r := &Report{}
	err := r.stage("render", func() ([]render.Finding, error) {
		names, err := render.Clusters(cfg.RepoRoot)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("no clusters/*/bootstrap under %s", cfg.RepoRoot)
		}
		opts := render.Options{RepoRoot: cfg.RepoRoot, ChartDir: cfg.ChartDir, Helm: cfg.Helm, KubeVersion: cfg.KubeVersion + ".0", TemplateCache: render.TemplateCacheDir()}
		var out []render.Finding
		for _, name := range names {
			var c *render.Cluster
			if cfg.Rendered != "" {
				c, err = render.LoadRendered(opts, filepath.Join(cfg.Rendered, name), name)
			} else {
				c, err = render.LoadCluster(opts, name)
			}
			if err != nil {
				return nil, err
			}
			// The clusters install the same CRDs, mostly: the first one's saves a render.
			opts.APIVersions = c.APIVersions
			r.Clusters = append(r.Clusters, c)
			out = append(out, c.Findings...)
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// The Go checks, as a finding's <check> part names them (render.Finding) and as their stages
// are called: docs/verify.md describes each.
const (
	CheckStructure = "argo-structure"
	CheckQuota     = "quota"
	CheckSchema    = "schema"
)

// Check runs the stages after the render on the loaded clusters: the Argo CD structure, quotas,
// schema and policy. An error means a check could not run; what is wrong is in the findings.
func (r *Report) Check(ctx context.Context, cfg Config) error {
	err := r.stage(CheckStructure, func() ([]render.Finding, error) {
		out := Projects(r.Clusters)
		for _, c := range r.Clusters {
			out = append(out, Structure(c, ScopesOf(c))...)
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	err = r.stage(CheckQuota, func() ([]render.Finding, error) {
		return r.eachCluster(func(c *render.Cluster) ([]render.Finding, error) { return Quotas(c) })
	})
	if err != nil {
		return err
	}
	err = r.stage(CheckSchema, func() ([]render.Finding, error) {
		f, note, err := Schema(cfg.Validator, cfg.KubeVersion, r.Clusters)
		r.note = note
		return f, err
	})
	if err != nil {
		return err
	}
	err = r.stage("policy", func() ([]render.Finding, error) {
		p, err := LoadPolicies(ctx, cfg.PolicyDir)
		if err != nil {
			return nil, err
		}
		var mu sync.Mutex
		r.Excused = map[int]int{}
		return r.eachCluster(func(c *render.Cluster) ([]render.Finding, error) {
			ev, err := p.Evaluate(ctx, c, ScopesOf(c))
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			for i, n := range ev.Excused {
				r.Excused[i] += n
			}
			return ev.Findings, nil
		})
	})
	if err != nil {
		return err
	}
	return nil
}

// eachCluster runs a check on every cluster, concurrently, and collects the findings in the
// clusters' order.
func (r *Report) eachCluster(check func(*render.Cluster) ([]render.Finding, error)) ([]render.Finding, error) {
	found := make([][]render.Finding, len(r.Clusters))
	errs := make([]error, len(r.Clusters))
	var wg sync.WaitGroup
	for i, c := range r.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			found[i], errs[i] = check(c)
		}()
	}
	wg.Wait()
	var out []render.Finding
	for i := range r.Clusters {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, found[i]...)
	}
	return out, nil
}
