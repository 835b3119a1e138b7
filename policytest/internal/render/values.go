package render

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// A known-values tree: a map node lists the keys that exist there; a leaf (true) accepts
// anything below it (a free-form map such as podAnnotations, a list, a scalar).
type known = map[string]any

const leaf = true

// istioDefaults is where Istio's charts keep their defaults: templates/zzz_profile.yaml merges
// .Values._internal_defaults_do_not_set under the user's values, so its keys are top-level keys.
const istioDefaults = "_internal_defaults_do_not_set"

// valuesRef finds the .Values paths a template reads, e.g. `.Values.pilot.autoscaleMin`.
var valuesRef = regexp.MustCompile(`\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)`)

// descope finds Istio's legacy prefixes (templates/zzy_descope_legacy.yaml copies everything
// under .Values.pilot, or .Values.cni, to the top): the prefix takes every top-level key.
var descope = regexp.MustCompile(`mustMergeOverwrite\s+\$\.Values\s+\(index\s+\$\.Values\s+"([A-Za-z_][A-Za-z0-9_]*)"\)`)

// passThrough finds the .Values paths a template hands on whole (to toYaml, a merge, an
// include): such a value is an API of its own (a mesh config, a container's resources) whose
// keys the chart does not list; what it becomes is checked by the schema stage.
var passThrough = []*regexp.Regexp{
	regexp.MustCompile(`(?:toYaml|toJson|toPrettyJson|toRawJson|mustToJson|mustToPrettyJson|merge|mustMerge|mergeOverwrite|mustMergeOverwrite|deepCopy|include\s+"[^"]+")\s+\(?(?:\$[\w.]*\s+){0,2}\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\)?\s*(?:\}\}|\||\))`),
	regexp.MustCompile(`\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\|\s*(?:toYaml|toJson|toPrettyJson|toRawJson|mustToJson|mustToPrettyJson)`),
	// `{{ with .Values.x }} field: {{ toYaml . }}`: the block hands the whole value on
	regexp.MustCompile(`with\s+\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*-?\}\}[^{]*\{\{-?\s*(?:toYaml|tpl\s+\(?\s*toYaml)\s+\.\s*[|})]`),
	// every key of a map: omit (the rest passes on), or a range over its keys and values
	regexp.MustCompile(`omit\s+\(?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)`),
	regexp.MustCompile(`range\s+\$\w+\s*,\s*\$\w+\s*:=\s*\(?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\)?\s*\}\}`),
}

// knownValues builds the tree of value keys of the chart at root: its coalesced defaults, the
// properties of every values.schema.json, and the .Values paths of every template, each at the
// place of its (sub)chart.
func knownValues(files map[string][]byte, root string, defaults map[string]any) (known, error) {
	tree := fromValues(defaults)
	if inner, ok := tree[istioDefaults].(known); ok {
		delete(tree, istioDefaults)
		addTree(tree, inner)
	}
	prefixes, err := chartPrefixes(files, root, nil)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(prefixes))
	for d := range prefixes {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		prefix := prefixes[dir]
		if data, ok := files[dir+"/values.schema.json"]; ok {
			var schema map[string]any
			if err := json.Unmarshal(data, &schema); err != nil {
				return nil, fmt.Errorf("%s/values.schema.json: %w", dir, err)
			}
			if node, ok := fromSchema(schema, schema, 0).(known); ok {
				addTree(subtree(tree, prefix), node)
			}
		}
	}
	for name, data := range files {
		dir := chartDirOf(name)
		prefix, ok := prefixes[dir]
		if !ok || !strings.HasPrefix(name, dir+"/templates/") {
			continue
		}
		at := func(ref string) []string {
			keys := strings.Split(ref[1:], ".")
			if keys[0] == "global" { // globals are shared by every (sub)chart at the top
				return keys
			}
			return append(append([]string{}, prefix...), keys...)
		}
		for _, m := range valuesRef.FindAllStringSubmatch(string(data), -1) {
			addPath(tree, at(m[1]))
		}
		for _, re := range passThrough {
			for _, m := range re.FindAllStringSubmatch(string(data), -1) {
				setLeaf(tree, at(m[1]))
			}
		}
	}
	for name, data := range files {
		if chartDirOf(name) != root {
			continue
		}
		for _, m := range descope.FindAllStringSubmatch(string(data), -1) {
			mirror := known{}
			addTree(mirror, tree)
			tree[m[1]] = mirror
		}
	}
	return tree, nil
}

// chartDirOf is the (sub)chart folder a file of the package belongs to.
func chartDirOf(name string) string {
	if i := strings.LastIndex(name, "/templates/"); i >= 0 {
		return name[:i]
	}
	return path.Dir(name)
}

// chartPrefixes maps every (sub)chart folder to the values path its values live at: the root
// at [], a dependency under its alias or name.
func chartPrefixes(files map[string][]byte, dir string, prefix []string) (map[string][]string, error) {
	out := map[string][]string{dir: prefix}
	var meta chartMeta
	if err := yaml.Unmarshal(files[dir+"/Chart.yaml"], &meta); err != nil {
		return nil, fmt.Errorf("%s/Chart.yaml: %w", dir, err)
	}
	for name := range files {
		rest, ok := strings.CutPrefix(name, dir+"/charts/")
		if !ok || strings.Count(rest, "/") != 1 || path.Base(rest) != "Chart.yaml" {
			continue
		}
		sub := dir + "/charts/" + path.Dir(rest)
		var subMeta chartMeta
		if err := yaml.Unmarshal(files[name], &subMeta); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		key := subMeta.Name
		for _, d := range meta.Dependencies {
			if d.Name == subMeta.Name && d.Alias != "" {
				key = d.Alias
			}
		}
		inner, err := chartPrefixes(files, sub, append(append([]string{}, prefix...), key))
		if err != nil {
			return nil, err
		}
		for k, v := range inner {
			out[k] = v
		}
	}
	return out, nil
}

// fromValues turns values into a known tree: maps with keys are nodes, everything else a leaf.
func fromValues(v map[string]any) known {
	out := known{}
	for k, val := range v {
		if m, ok := val.(map[string]any); ok && len(m) > 0 {
			out[k] = fromValues(m)
		} else {
			out[k] = leaf
		}
	}
	return out
}

// fromSchema turns a JSON schema of values into a known tree: an object with properties is a
// node (with the properties of allOf/anyOf/oneOf branches too); an object without properties,
// or one whose additionalProperties admit more keys, is a leaf. Only local $refs exist in
// vendored charts (a remote one would make helm go to the network).
func fromSchema(root, s map[string]any, depth int) any {
	if depth > 32 {
		return leaf
	}
	if ref, ok := s["$ref"].(string); ok && strings.HasPrefix(ref, "#/") {
		target := any(root)
		for _, p := range strings.Split(ref[2:], "/") {
			m, _ := target.(map[string]any)
			target = m[p]
		}
		if m, ok := target.(map[string]any); ok {
			return fromSchema(root, m, depth+1)
		}
		return leaf
	}
	node := known{}
	props, _ := s["properties"].(map[string]any)
	for k, p := range props {
		pm, _ := p.(map[string]any)
		node[k] = fromSchema(root, pm, depth+1)
	}
	for _, combinator := range []string{"allOf", "anyOf", "oneOf"} {
		branches, _ := s[combinator].([]any)
		for _, b := range branches {
			bm, _ := b.(map[string]any)
			if sub, ok := fromSchema(root, bm, depth+1).(known); ok {
				addTree(node, sub)
			}
		}
	}
	if len(node) == 0 {
		return leaf
	}
	if ap, ok := s["additionalProperties"]; ok && ap != false {
		return leaf
	}
	return node
}

// addTree adds the keys of b to a; where one side lists keys and the other is a leaf, the keys
// win (a default of {} does not hide a schema's properties).
func addTree(a, b known) {
	for k, bv := range b {
		av, ok := a[k]
		bm, bIsNode := bv.(known)
		am, aIsNode := av.(known)
		switch {
		case !ok:
			a[k] = bv
		case aIsNode && bIsNode:
			addTree(am, bm)
		case bIsNode:
			a[k] = bm
		}
	}
}

// parentOf walks to the node that holds the last key of p, creating missing nodes on the way;
// false when a leaf lies on the way (it accepts everything below it already).
func parentOf(tree known, p []string) (known, bool) {
	node := tree
	for _, k := range p[:len(p)-1] {
		next, ok := node[k]
		if !ok {
			n := known{}
			node[k], node = n, n
			continue
		}
		m, isNode := next.(known)
		if !isNode {
			return nil, false
		}
		node = m
	}
	return node, true
}

// addPath adds a path a template reads, as a leaf when it is new.
func addPath(tree known, p []string) {
	if parent, ok := parentOf(tree, p); ok {
		if _, exists := parent[p[len(p)-1]]; !exists {
			parent[p[len(p)-1]] = leaf
		}
	}
}

// setLeaf makes the node at p a leaf: everything below it is accepted.
func setLeaf(tree known, p []string) {
	if parent, ok := parentOf(tree, p); ok {
		parent[p[len(p)-1]] = leaf
	}
}

// subtree is the node at prefix (created when missing).
func subtree(tree known, prefix []string) known {
	node := tree
	for _, k := range prefix {
		next, ok := node[k].(known)
		if !ok {
			next = known{}
			node[k] = next
		}
		node = next
	}
	return node
}

// UnknownValues lists the key paths (dot-separated, sorted) of values that a known tree
// (Chart.Known) does not have.
func UnknownValues(values map[string]any, tree known) []string {
	var out []string
	var walk func(prefix string, v map[string]any, node known)
	walk = func(prefix string, v map[string]any, node known) {
		for k, val := range v {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			next, ok := node[k]
			if !ok {
				out = append(out, p)
				continue
			}
			vm, vIsMap := val.(map[string]any)
			nm, isNode := next.(known)
			if vIsMap && isNode {
				walk(p, vm, nm)
			}
		}
	}
	walk("", values, tree)
	sort.Strings(out)
	return out
}
