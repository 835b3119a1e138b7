package check

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// Gateway is the caller name of the Istio ingress gateway: a service with a public route is
// called by it.
const Gateway = "gateway"

// StoreClientLabelPrefix starts the pod label a service's pods carry for each data store it
// uses: data.cloudlab.io/<store>: client (services/chart). A store's NetworkPolicy admits its
// clients by it.
const StoreClientLabelPrefix = "data.cloudlab.io/"

// Service is one entry of the service catalog, as the services chart reads it: the key
// services.<name> of services/<name>/values.yaml. Only the keys that decide who may talk to whom
// are read here; the chart's values.schema.json owns the rest.
type Service struct {
	Name        string
	File        string   // the values file the entry is written in, relative to the repository root
	DataStores  []string // stores it uses (keys of the chart's `stores`)
	Calls       []string // services it calls, as written (the one place a call is written)
	PublicRoute string   // path prefix the ingress gateway routes to it; "" when not public
}

// Catalog is every service the services release renders, in the order
// services/kustomization.yaml lists their values files.
type Catalog struct {
	Services []Service
	// Problems are layout faults the chart cannot see: a folder whose values file is not
	// listed, a listed file that is missing, an entry whose name is not its folder's.
	Problems []string
}

// serviceEntry is the part of a catalog entry read here.
type serviceEntry struct {
	DataStores  []string `json:"dataStores"`
	Calls       []string `json:"calls"`
	PublicRoute struct {
		Prefix string `json:"prefix"`
	} `json:"publicRoute"`
}

// CatalogKustomization is where the services release and its values files are declared.
const CatalogKustomization = "services/kustomization.yaml"

// LoadCatalog reads the catalog the way Argo CD's render reads it: the values files that
// services/kustomization.yaml passes to its one helmCharts release, in order, each holding
// `services: {<name>: ...}`. It errors when the kustomization or a listed file cannot be read or
// parsed; layout faults are collected in Problems.
func LoadCatalog(repoRoot string) (*Catalog, error) {
	kfile := filepath.Join(repoRoot, filepath.FromSlash(CatalogKustomization))
	data, err := os.ReadFile(kfile)
	if err != nil {
		return nil, err
	}
	var k types.Kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", CatalogKustomization, err)
	}
	if len(k.HelmCharts) != 1 {
		return nil, fmt.Errorf("%s: want one helmCharts release of the services chart, found %d", CatalogKustomization, len(k.HelmCharts))
	}
	c := &Catalog{}
	listed := map[string]bool{}
	for _, rel := range k.HelmCharts[0].AdditionalValuesFiles {
		file := filepath.ToSlash(filepath.Join("services", rel))
		listed[file] = true
		if err := c.readEntries(repoRoot, file); err != nil {
			return nil, err
		}
	}
	folders, err := filepath.Glob(filepath.Join(repoRoot, "services", "*", "values.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range folders {
		rel, _ := filepath.Rel(repoRoot, f)
		if rel = filepath.ToSlash(rel); rel != "services/chart/values.yaml" && !listed[rel] {
			c.Problems = append(c.Problems, fmt.Sprintf("%s is not listed in %s additionalValuesFiles: the release does not read it", rel, CatalogKustomization))
		}
	}
	return c, nil
}

// readEntries adds the entries of one values file, which must hold exactly the entry named
// after its folder.
func (c *Catalog) readEntries(repoRoot, file string) error {
	data, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(file)))
	if err != nil {
		c.Problems = append(c.Problems, fmt.Sprintf("%s is listed in %s but cannot be read: %v", file, CatalogKustomization, err))
		return nil
	}
	var v struct {
		Services map[string]serviceEntry `json:"services"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	folder := filepath.Base(filepath.Dir(file))
	names := make([]string, 0, len(v.Services))
	for name := range v.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) != 1 || names[0] != folder {
		c.Problems = append(c.Problems, fmt.Sprintf("%s: holds the entries %v; it must hold exactly services.%s (one service per folder, named after it)", file, names, folder))
	}
	for _, name := range names {
		e := v.Services[name]
		c.Services = append(c.Services, Service{Name: name, File: file, DataStores: e.DataStores, Calls: e.Calls, PublicRoute: e.PublicRoute.Prefix})
	}
	return nil
}

// Names are the services' names, in catalog order.
func (c *Catalog) Names() []string {
	out := make([]string, len(c.Services))
	for i, s := range c.Services {
		out[i] = s.Name
	}
	return out
}

// Service is the entry of that name, if the catalog has one.
func (c *Catalog) Service(name string) (Service, bool) {
	for _, s := range c.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Calls is every call the catalog allows, sorted: A->B for each B in A's calls, and
// gateway->A for each A with a public route.
func (c *Catalog) Calls() []Call {
	var out []Call
	for _, s := range c.Services {
		for _, callee := range s.Calls {
			out = append(out, Call{s.Name, callee})
		}
		if s.PublicRoute != "" {
			out = append(out, Call{Gateway, s.Name})
		}
	}
	sortCalls(out)
	return out
}

// CallersOf lists who calls a service, in catalog order, the gateway first.
func (c *Catalog) CallersOf(name string) []string {
	var out []string
	for _, s := range c.Services {
		if s.Name == name && s.PublicRoute != "" {
			out = append([]string{Gateway}, out...)
		}
		for _, callee := range s.Calls {
			if callee == name {
				out = append(out, s.Name)
			}
		}
	}
	return out
}

// ClientsOf lists the services that declare a data store, in catalog order.
func (c *Catalog) ClientsOf(store string) []string {
	var out []string
	for _, s := range c.Services {
		for _, d := range s.DataStores {
			if d == store {
				out = append(out, s.Name)
			}
		}
	}
	return out
}

// MarkdownTable is the catalog as the table of docs/services.md: service, data it uses, calls,
// called by, public route ("—" for none), one row per service in catalog order.
func (c *Catalog) MarkdownTable() string {
	list := func(items []string) string {
		if len(items) == 0 {
			return "—"
		}
		return strings.Join(items, ", ")
	}
	var b strings.Builder
	b.WriteString("| service | data it uses | calls | called by | public route |\n|---|---|---|---|---|\n")
	for _, s := range c.Services {
		route := s.PublicRoute
		if route == "" {
			route = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Name, list(s.DataStores), list(s.Calls), list(c.CallersOf(s.Name)), route)
	}
	return b.String()
}
