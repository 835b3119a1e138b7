package check

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// This file evaluates the ingress gateway's DENY AuthorizationPolicies (its JWT rules) for one
// request; calls.go reads service-to-service calls out of the other policies.

// Request is what the edge's Istio authorization sees of one request.
type Request struct {
	Path      string
	Principal string              // request principal (iss/sub of a valid JWT); "" without a token
	Claims    map[string][]string // JWT claims, e.g. roles: [admin]
}

// istioPathMatch implements Istio's path patterns: exact, "prefix*", "*suffix" or "*".
func istioPathMatch(pattern, path string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(path, strings.TrimSuffix(pattern, "*"))
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(path, strings.TrimPrefix(pattern, "*"))
	}
	return pattern == path
}

func anyMatch(patterns []string, value string) bool {
	for _, p := range patterns {
		if istioPathMatch(p, value) {
			return true
		}
	}
	return false
}

// Denied reports whether any of the DENY AuthorizationPolicies denies the request, using the
// subset of Istio's semantics these policies use: source (not)requestPrincipals, operation
// (not)paths, and `when` on request.auth.claims[...] with (not)values. A field a rule does not
// set matches everything; a rule matches when all its parts match.
func Denied(policies []*unstructured.Unstructured, req Request) (bool, string) {
	for _, ap := range policies {
		if action, _, _ := unstructured.NestedString(ap.Object, "spec", "action"); action != "DENY" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(ap.Object, "spec", "rules")
		for _, r := range rules {
			if ruleMatches(r.(map[string]any), req) {
				return true, ap.GetName()
			}
		}
	}
	return false, ""
}

func ruleMatches(rule map[string]any, req Request) bool {
	if !anyEntry(rule, "from", "source", func(src map[string]any) bool { return sourceMatches(src, req) }) ||
		!anyEntry(rule, "to", "operation", func(op map[string]any) bool { return operationMatches(op, req) }) {
		return false
	}
	whens, _, _ := unstructured.NestedSlice(rule, "when")
	for _, w := range whens {
		if !conditionMatches(w.(map[string]any), req) {
			return false
		}
	}
	return true
}

// anyEntry: a rule without `field` matches; otherwise one of its entries' `key` must match.
func anyEntry(rule map[string]any, field, key string, match func(map[string]any) bool) bool {
	entries, _, _ := unstructured.NestedSlice(rule, field)
	if len(entries) == 0 {
		return true
	}
	for _, e := range entries {
		if m, _, _ := unstructured.NestedMap(e.(map[string]any), key); match(m) {
			return true
		}
	}
	return false
}

func sourceMatches(src map[string]any, req Request) bool {
	if v, ok, _ := unstructured.NestedStringSlice(src, "requestPrincipals"); ok && !(req.Principal != "" && anyMatch(v, req.Principal)) {
		return false
	}
	if v, ok, _ := unstructured.NestedStringSlice(src, "notRequestPrincipals"); ok && req.Principal != "" && anyMatch(v, req.Principal) {
		return false
	}
	return true
}

func operationMatches(op map[string]any, req Request) bool {
	if v, ok, _ := unstructured.NestedStringSlice(op, "paths"); ok && !anyMatch(v, req.Path) {
		return false
	}
	if v, ok, _ := unstructured.NestedStringSlice(op, "notPaths"); ok && anyMatch(v, req.Path) {
		return false
	}
	return true
}

func conditionMatches(w map[string]any, req Request) bool {
	key, _, _ := unstructured.NestedString(w, "key")
	claim, ok := strings.CutPrefix(key, "request.auth.claims[")
	if !ok {
		return false // a condition we do not model never matches, so a DENY is never assumed
	}
	have := req.Claims[strings.TrimSuffix(claim, "]")]
	matchesAny := func(patterns []string) bool {
		for _, h := range have {
			if anyMatch(patterns, h) {
				return true
			}
		}
		return false
	}
	if v, ok, _ := unstructured.NestedStringSlice(w, "values"); ok && !matchesAny(v) {
		return false
	}
	if v, ok, _ := unstructured.NestedStringSlice(w, "notValues"); ok && matchesAny(v) {
		return false
	}
	return true
}
