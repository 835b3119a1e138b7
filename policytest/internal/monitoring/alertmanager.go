package monitoring

import (
	"fmt"
	"regexp"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AlertmanagerConfig is the part of a monitoring.coreos.com/v1alpha1 AlertmanagerConfig that
// decides where an alert goes: the route tree, the inhibition rules and the receivers.
type AlertmanagerConfig struct {
	Name         string
	Root         Route         `json:"route"`
	InhibitRules []InhibitRule `json:"inhibitRules"`
	Receivers    []Receiver    `json:"receivers"`
}

// Route is a node of the route tree.
type Route struct {
	Receiver       string    `json:"receiver"`
	Matchers       []Matcher `json:"matchers"`
	Continue       bool      `json:"continue"`
	Routes         []Route   `json:"routes"`
	GroupBy        []string  `json:"groupBy"`
	GroupWait      string    `json:"groupWait"`
	GroupInterval  string    `json:"groupInterval"`
	RepeatInterval string    `json:"repeatInterval"`
}

// Matcher matches one label (matchType "=", "!=", "=~", "!~"; regular expressions are anchored).
type Matcher struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	MatchType string `json:"matchType"`
}

// InhibitRule silences target alerts while a source alert fires and the equal labels agree.
type InhibitRule struct {
	SourceMatch []Matcher `json:"sourceMatch"`
	TargetMatch []Matcher `json:"targetMatch"`
	Equal       []string  `json:"equal"`
}

// Receiver is a named receiver; Integrations counts its notifiers (Slack, PagerDuty, webhook...).
type Receiver struct {
	Name         string
	Integrations int
	// SecretKeys are the Secret keys its notifiers read (Secret name -> keys).
	SecretKeys map[string][]string
}

func alertmanagerConfig(o *unstructured.Unstructured) (*AlertmanagerConfig, error) {
	var spec struct {
		Route        Route            `json:"route"`
		InhibitRules []InhibitRule    `json:"inhibitRules"`
		Receivers    []map[string]any `json:"receivers"`
	}
	s, ok := o.Object["spec"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no spec")
	}
	// Only the fields the model reads; the CRD schema (checked separately) judges the rest.
	b, err := yamlMarshal(map[string]any{"route": s["route"], "inhibitRules": s["inhibitRules"], "receivers": s["receivers"]})
	if err != nil {
		return nil, err
	}
	if err := yamlUnmarshalLoose(b, &spec); err != nil {
		return nil, err
	}
	a := &AlertmanagerConfig{Name: o.GetName(), Root: spec.Route, InhibitRules: spec.InhibitRules}
	for _, r := range spec.Receivers {
		name, _ := r["name"].(string)
		rc := Receiver{Name: name, SecretKeys: map[string][]string{}}
		for field, v := range r {
			list, ok := v.([]any)
			if field == "name" || !ok {
				continue
			}
			rc.Integrations += len(list)
			for _, item := range list {
				collectSecretRefs(item, rc.SecretKeys)
			}
		}
		a.Receivers = append(a.Receivers, rc)
	}
	return a, nil
}

// collectSecretRefs finds every {name, key} secret key selector inside a notifier's settings.
func collectSecretRefs(v any, into map[string][]string) {
	switch t := v.(type) {
	case map[string]any:
		name, n := t["name"].(string)
		key, k := t["key"].(string)
		if n && k && len(t) <= 3 {
			into[name] = append(into[name], key)
			return
		}
		for _, c := range t {
			collectSecretRefs(c, into)
		}
	case []any:
		for _, c := range t {
			collectSecretRefs(c, into)
		}
	}
}

// Receiver returns the receiver of that name (nil if none).
func (a *AlertmanagerConfig) Receiver(name string) *Receiver {
	for i := range a.Receivers {
		if a.Receivers[i].Name == name {
			return &a.Receivers[i]
		}
	}
	return nil
}

func (m Matcher) matches(labels map[string]string) (bool, error) {
	v := labels[m.Name]
	switch m.MatchType {
	case "", "=":
		return v == m.Value, nil
	case "!=":
		return v != m.Value, nil
	case "=~", "!~":
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return false, fmt.Errorf("matcher %s%s%q: %v", m.Name, m.MatchType, m.Value, err)
		}
		return re.MatchString(v) == (m.MatchType == "=~"), nil
	}
	return false, fmt.Errorf("matcher %s: unknown matchType %q", m.Name, m.MatchType)
}

func matchAll(ms []Matcher, labels map[string]string) (bool, error) {
	for _, m := range ms {
		ok, err := m.matches(labels)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// Route returns where Alertmanager sends an alert with these labels: it walks the route tree
// as Alertmanager does (a child whose matchers all match takes the alert, depth first; the first
// matching child ends the search unless it sets continue; a node no child takes keeps it) and
// returns the receivers of the nodes that keep it, inheriting the receiver from the parent.
func (a *AlertmanagerConfig) Route(labels map[string]string) ([]string, error) {
	return walkRoute(a.Root, a.Root.Receiver, labels)
}

func walkRoute(r Route, inherited string, labels map[string]string) ([]string, error) {
	receiver := r.Receiver
	if receiver == "" {
		receiver = inherited
	}
	var out []string
	for _, c := range r.Routes {
		ok, err := matchAll(c.Matchers, labels)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		got, err := walkRoute(c, receiver, labels)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		if !c.Continue {
			break
		}
	}
	if len(out) == 0 {
		out = []string{receiver}
	}
	return out, nil
}

// Inhibits reports whether a firing source alert silences the target alert under some rule, as
// Alertmanager's inhibitor decides: the source matches the rule's source matchers, the target its
// target matchers, the equal labels have the same value in both (absent counts as empty), and an
// alert that matches both sides of a rule is not silenced by another such alert.
func (a *AlertmanagerConfig) Inhibits(source, target map[string]string) (bool, error) {
	for _, r := range a.InhibitRules {
		s, err := matchAll(r.SourceMatch, source)
		if err != nil {
			return false, err
		}
		t, err := matchAll(r.TargetMatch, target)
		if err != nil {
			return false, err
		}
		if !s || !t {
			continue
		}
		equal := true
		for _, l := range r.Equal {
			if source[l] != target[l] {
				equal = false
			}
		}
		if !equal {
			continue
		}
		targetIsSource, err := matchAll(r.SourceMatch, target)
		if err != nil {
			return false, err
		}
		sourceIsTarget, err := matchAll(r.TargetMatch, source)
		if err != nil {
			return false, err
		}
		if targetIsSource && sourceIsTarget {
			continue
		}
		return true, nil
	}
	return false, nil
}
