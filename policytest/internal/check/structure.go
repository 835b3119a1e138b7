package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/cloudlab/platform/policytest/internal/render"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// InCluster is the only destination server: every cluster runs its own Argo CD.
const InCluster = "https://kubernetes.default.svc"

// Waves are the named sync waves, in order, each owning a band of ten sync-wave numbers.
var Waves = []string{"platform", "mesh", "data", "services"}

const (
	labelWave      = "cloudlab.io/wave"
	annUnrendered  = "cloudlab.io/unrendered-kinds" // on an AppProject: allowed kinds no repo path renders (upstream charts, a wave not written yet)
	platformProj   = "platform"
	rootProj       = "root"
	argoNamespace  = "argocd"
	annSyncWaveKey = "argocd.argoproj.io/sync-wave"
)

// Structure checks the Argo CD layout of one cluster: projects, destinations, waves, sync
// policy, and that every rendered object is permitted by its Application's project (decided
// by Argo CD's own AppProject methods).
func Structure(c *render.Cluster, scopes Scopes) []render.Finding {
	var out []render.Finding
	add := func(app *v1alpha1.Application, format string, args ...any) {
		out = append(out, render.AppFinding(c.Name, app, CheckStructure, fmt.Sprintf(format, args...)))
	}
	namespaces := map[string]bool{}
	for _, a := range c.AllApps() {
		for _, o := range a.Objects {
			if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
				namespaces[o.GetName()] = true
			}
		}
	}

	// The root: project root, only Applications and AppProjects, in argocd.
	if c.Root.Application.Spec.Project != rootProj {
		add(c.Root.Application, "the root Application must use the project %q (it may only manage Applications and AppProjects)", rootProj)
	}
	checkWaves(c, add)
	for _, a := range c.AllApps() {
		app := a.Application
		dest := app.Spec.Destination
		if dest.Server != InCluster {
			add(app, "destination server %q: every cluster runs its own Argo CD, use %s", dest.Server, InCluster)
		}
		if !namespaces[dest.Namespace] {
			add(app, "destination namespace %q is not created by platform/namespaces", dest.Namespace)
		}
		proj, ok := c.Projects[app.Spec.Project]
		if !ok {
			add(app, "project %q does not exist: add an AppProject in apps/", app.Spec.Project)
			continue
		}
		checkProject(a, proj, add)
		out = append(out, objectsPermitted(c, a, proj, scopes)...)
	}
	return out
}

// addFinding adds a finding about an Application.
type addFinding func(app *v1alpha1.Application, format string, args ...any)

// checkWaves checks every child Application's namespace, wave label and sync-wave annotation
// (wave N of Waves takes sync-waves 10N to 10N+9), its sync policy, and that every wave has an
// Application.
func checkWaves(c *render.Cluster, add addFinding) {
	waveSeen := map[string]bool{}
	for _, a := range c.Apps {
		app := a.Application
		if app.Namespace != argoNamespace {
			add(app, "must be in namespace %s, where Argo CD looks for Applications", argoNamespace)
		}
		wave := app.Labels[labelWave]
		idx := indexOf(Waves, wave)
		if idx < 0 {
			add(app, "label %s=%q: must be one of %s", labelWave, wave, strings.Join(Waves, ", "))
		} else {
			waveSeen[wave] = true
			lo, hi := idx*10, idx*10+9
			if _, ok := app.Annotations[annSyncWaveKey]; !ok || a.Wave < lo || a.Wave > hi {
				add(app, "wave %s needs annotation %s between %d and %d, got %q", wave, annSyncWaveKey, lo, hi, app.Annotations[annSyncWaveKey])
			}
		}
		checkSyncPolicy(c.Name, app, add)
	}
	for _, w := range Waves {
		if !waveSeen[w] {
			add(c.Root.Application, "no child Application in wave %q: the four waves are %s", w, strings.Join(Waves, " -> "))
		}
	}
}

// checkProject checks that an Application's project allows its destination and sources, and
// upstream charts only from the platform (or root) project.
func checkProject(a *render.App, proj *v1alpha1.AppProject, add addFinding) {
	app := a.Application
	dest := app.Spec.Destination
	if proj.Name != platformProj && proj.Name != rootProj && a.Chart != nil {
		add(app, "upstream charts may only be installed by the %s project", platformProj)
	}
	if ok, _ := proj.IsDestinationPermitted(dest, noClusters); !ok {
		add(app, "project %s does not allow destination %s/%s: add it to the project's destinations", proj.Name, dest.Server, dest.Namespace)
	}
	for _, src := range app.Spec.GetSources() {
		if !proj.IsSourcePermitted(src) {
			add(app, "project %s does not allow source %s: add it to the project's sourceRepos", proj.Name, src.RepoURL)
		}
	}
}

// objectsPermitted checks every object an Application renders: its project permits the kind
// there (Argo CD's AppProject.IsResourcePermitted), and the CRD of its kind comes from an
// earlier sync-wave of this cluster.
func objectsPermitted(c *render.Cluster, a *render.App, proj *v1alpha1.AppProject, scopes Scopes) []render.Finding {
	var out []render.Finding
	dest := a.Application.Spec.Destination
	for _, o := range a.Objects {
		gk := o.GroupVersionKind().GroupKind()
		ns := o.GetNamespace()
		if ns == "" && !scopes.ClusterScoped(gk) {
			ns = dest.Namespace // Argo CD puts it in the destination namespace
		}
		if ok, _ := proj.IsResourcePermitted(gk, ns, dest, noClusters); !ok {
			what := "namespaced kind " + gkString(gk) + " in namespace " + ns
			if ns == "" {
				what = "cluster-scoped kind " + gkString(gk)
			}
			out = append(out, render.ObjectFinding(c.Name, a.Name(), o, CheckStructure, fmt.Sprintf("project %s does not permit %s: list it in the project (or move the object to the right Application)", proj.Name, what)))
		}
		// Argo CD's own CRDs exist before anything syncs (the bootstrap installs the argo-cd
		// chart); every other CRD must come from an earlier wave of this cluster.
		owner := scopes.Owner(gk.Group)
		switch {
		case gk.Group == "argoproj.io" || render.BuiltinGroups[gk.Group] || owner == a:
		case owner == nil:
			out = append(out, render.ObjectFinding(c.Name, a.Name(), o, CheckStructure, fmt.Sprintf("no Application of this cluster installs the CRDs of %s: add the chart (or manifest) Application that installs them", gk.Group)))
		case owner.Wave >= a.Wave:
			out = append(out, render.ObjectFinding(c.Name, a.Name(), o, CheckStructure, fmt.Sprintf("uses a CRD that Application %s installs in sync-wave %d: this Application (wave %d) must sync later", owner.Name(), owner.Wave, a.Wave)))
		}
	}
	return out
}

// Projects checks the AppProjects of all clusters together: least privilege, no wildcards, and
// whitelists that allow what the Applications deploy and no more.
func Projects(clusters []*render.Cluster) []render.Finding {
	var out []render.Finding
	rendered := map[string]map[metav1.GroupKind]bool{} // project -> kinds its repo-path Applications render
	projects := map[string]*v1alpha1.AppProject{}
	projCluster := map[string]string{}
	for _, c := range clusters {
		for name, p := range c.Projects {
			if _, seen := projects[name]; !seen {
				projects[name], projCluster[name] = p, c.Name
			}
		}
		for _, a := range c.AllApps() {
			p := a.Application.Spec.Project
			if rendered[p] == nil {
				rendered[p] = map[metav1.GroupKind]bool{}
			}
			for _, o := range a.Objects {
				gk := o.GroupVersionKind().GroupKind()
				rendered[p][metav1.GroupKind{Group: gk.Group, Kind: gk.Kind}] = true
			}
		}
	}
	names := make([]string, 0, len(projects))
	for n := range projects {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p := projects[name]
		add := func(format string, args ...any) {
			out = append(out, render.Finding{Cluster: projCluster[name], App: render.RootName, Kind: "AppProject", Namespace: p.Namespace, Name: p.Name, Check: CheckStructure, Message: fmt.Sprintf(format, args...)})
		}
		for _, r := range p.Spec.SourceRepos {
			if strings.Contains(r, "*") {
				add("sourceRepos entry %q is a wildcard: name each repository", r)
			}
		}
		for _, d := range p.Spec.Destinations {
			if strings.Contains(d.Server+d.Namespace+d.Name, "*") {
				add("destination %s/%s is a wildcard: name each namespace", d.Server, d.Namespace)
			}
		}
		all := append(append([]metav1.GroupKind{}, p.Spec.ClusterResourceWhitelist...), p.Spec.NamespaceResourceWhitelist...)
		for _, gk := range all {
			if gk.Group == "*" || gk.Kind == "*" {
				add("whitelist entry %s is a wildcard: name each kind", gkString(schema.GroupKind(gk)))
			}
		}
		if len(p.Spec.ClusterResourceWhitelist) > 0 && name != platformProj {
			add("only the %s project may create cluster-scoped objects: empty clusterResourceWhitelist", platformProj)
		}
		if len(p.Spec.NamespaceResourceWhitelist) == 0 {
			add("namespaceResourceWhitelist is empty, which Argo CD reads as every namespaced kind: list the kinds")
		}
		unrendered := map[metav1.GroupKind]bool{}
		for _, s := range splitList(p.Annotations[annUnrendered]) {
			unrendered[parseGK(s)] = true
		}
		for _, gk := range all {
			switch {
			case rendered[name][gk] && unrendered[gk]:
				add("%s is rendered from this repository now: remove it from annotation %s", gkString(schema.GroupKind(gk)), annUnrendered)
			case !rendered[name][gk] && !unrendered[gk]:
				add("allows %s, which none of its Applications deploys: remove it (or, for an upstream chart's kind, list it in annotation %s)", gkString(schema.GroupKind(gk)), annUnrendered)
			}
			delete(unrendered, gk)
		}
		for gk := range unrendered {
			add("annotation %s names %s, which the project does not allow", annUnrendered, gkString(schema.GroupKind(gk)))
		}
	}
	return out
}

func checkSyncPolicy(cluster string, app *v1alpha1.Application, add func(*v1alpha1.Application, string, ...any)) {
	sp := app.Spec.SyncPolicy
	if sp == nil || sp.Automated == nil {
		add(app, "syncPolicy.automated is missing: merging to main must sync (apps/sync-policy.yaml)")
		return
	}
	if !sp.Automated.SelfHeal {
		add(app, "syncPolicy.automated.selfHeal must be true: git is the truth")
	}
	if !sp.SyncOptions.HasOption("ServerSideApply=true") {
		add(app, "syncOptions must include ServerSideApply=true")
	}
	if sp.Retry == nil || sp.Retry.Limit < 1 {
		add(app, "syncPolicy.retry is missing: a wave waiting for CRDs must retry")
	}
	if !sp.Automated.Prune && !(cluster == "prod" && app.Labels[labelWave] == "data") {
		add(app, "syncPolicy.automated.prune is off: only prod's data Applications may opt out (clusters/prod/apps/)")
	}
}

func noClusters(string) ([]*v1alpha1.Cluster, error) { return nil, nil }

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseGK reads "group/Kind" ("Kind" alone for the core group).
func parseGK(s string) metav1.GroupKind {
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return metav1.GroupKind{Group: s[:i], Kind: s[i+1:]}
	}
	return metav1.GroupKind{Kind: s}
}

func gkString(gk schema.GroupKind) string {
	if gk.Group == "" {
		return gk.Kind
	}
	return gk.Group + "/" + gk.Kind
}
