package policytest

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/monitoring"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// expectedReceiver is where an alert must go in staging and prod: the Watchdog to the dead man's
// switch; data and services alerts to their team (pager when critical); everything else,
// the chart's Kubernetes alerts included, to the platform team.
func expectedReceiver(labels map[string]string) string {
	if labels["alertname"] == "Watchdog" {
		return "deadmans-switch"
	}
	team := labels["team"]
	if team != "data" && team != "services" {
		team = "platform"
	}
	if labels["severity"] == "critical" {
		return team + "-pager"
	}
	return team + "-chat"
}

func alertLabels(a monitoring.AlertRule) map[string]string {
	l := map[string]string{"alertname": a.Alert, "namespace": "cloudlab-data"}
	for k, v := range a.Labels {
		l[k] = v
	}
	return l
}

// TestAlertmanagerRouting: in staging and prod every receiver notifies somebody (no null
// receiver), its keys and URLs come from a Secret an ExternalSecret of the same render writes, and
// every alert of the rules (and the chart's Watchdog and Kubernetes alerts) reaches its team's
// receiver; in dev every alert reaches a receiver that notifies nobody, on purpose.
func TestAlertmanagerRouting(t *testing.T) {
	for _, env := range monitoringEnvs {
		e := monitoringEnv(t, env)
		am := e.Alertmanager
		require.NotNil(t, am, "%s: no AlertmanagerConfig", env)
		var routeErr error
		walkRoutes(am.Root, func(r monitoring.Route) {
			if r.Receiver != "" && am.Receiver(r.Receiver) == nil {
				routeErr = fmt.Errorf("%s: a route names receiver %q, which is not defined", env, r.Receiver)
			}
		})
		require.NoError(t, routeErr)

		if env == "dev" {
			for _, r := range am.Receivers {
				assert.Zero(t, r.Integrations, "dev: receiver %s notifies somebody; dev pages nobody", r.Name)
			}
			assert.Empty(t, e.Of("ExternalSecret"), "dev: no receiver credentials are needed")
			continue
		}

		secrets := map[string]map[string]bool{} // Secret -> keys the ExternalSecrets write
		for _, es := range e.Of("ExternalSecret") {
			store, _, _ := unstructured.NestedString(es.Object, "spec", "secretStoreRef", "name")
			kind, _, _ := unstructured.NestedString(es.Object, "spec", "secretStoreRef", "kind")
			assert.Equal(t, "ClusterSecretStore/cloudlab-secrets", kind+"/"+store, "%s: ExternalSecret %s reads the environment's store", env, es.GetName())
			target, _, _ := unstructured.NestedString(es.Object, "spec", "target", "name")
			data, _, _ := unstructured.NestedSlice(es.Object, "spec", "data")
			for _, d := range data {
				if secrets[target] == nil {
					secrets[target] = map[string]bool{}
				}
				secrets[target][d.(map[string]any)["secretKey"].(string)] = true
			}
		}
		for _, r := range am.Receivers {
			assert.Positive(t, r.Integrations, "%s: receiver %s notifies nobody: a null receiver is allowed only in dev", env, r.Name)
			for secret, keys := range r.SecretKeys {
				for _, k := range keys {
					assert.True(t, secrets[secret][k], "%s: receiver %s reads key %s of Secret %s, which no ExternalSecret writes", env, r.Name, k, secret)
				}
			}
		}
		dms := am.Receiver("deadmans-switch")
		if assert.NotNil(t, dms, "%s: no deadmans-switch receiver", env) {
			assert.Contains(t, dms.SecretKeys["alertmanager-receivers"], "deadmans-switch-url", "%s: the dead man's switch is a webhook whose URL comes from the Secret", env)
		}

		cases := []map[string]string{
			{"alertname": "Watchdog", "severity": "none"},
			{"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "cloudlab"},
			{"alertname": "KubeNodeNotReady", "severity": "critical"},
			{"alertname": "CPUThrottlingHigh", "severity": "info", "namespace": "cloudlab"},
		}
		for _, a := range e.Alerts() {
			cases = append(cases, alertLabels(a))
		}
		for _, labels := range cases {
			got, err := am.Route(labels)
			require.NoError(t, err)
			assert.Equal(t, []string{expectedReceiver(labels)}, got, "%s: alert %v", env, labels)
		}
	}
}

func walkRoutes(r monitoring.Route, fn func(monitoring.Route)) {
	fn(r)
	for _, c := range r.Routes {
		walkRoutes(c, fn)
	}
}

// storeLabel is the uses_<store> label an SLO alert carries for a service that uses the store.
func storeLabel(store string) string { return "uses_" + strings.ReplaceAll(store, "-", "_") }

// TestAlertmanagerInhibition: while a store is down (impact=store-unavailable) the alerts of the
// services that use it and its own other alerts are silenced, and nothing else is; the services'
// store labels the SLO alerts carry are exactly the catalog's store client labels.
func TestAlertmanagerInhibition(t *testing.T) {
	stores := catalogStoreLabels(t)
	for _, env := range []string{"staging", "prod"} {
		e := monitoringEnv(t, env)
		am := e.Alertmanager
		info := recordingRuleExpr(e, "cloudlab:service_data_stores:info")
		require.NotEmpty(t, info, "%s: no recording rule cloudlab:service_data_stores:info", env)
		for _, store := range stores {
			key := strings.ReplaceAll(store, "-", "_")
			assert.Contains(t, info, `"`+storeLabel(store)+`", "$1", "label_data_cloudlab_io_`+key+`"`, "%s: cloudlab:service_data_stores:info must turn pod label data.cloudlab.io/%s into %s", env, store, storeLabel(store))
		}

		slo := map[string]string{"alertname": "ServiceErrorBudgetBurnFast", "severity": "critical", "team": "services", "slo": "availability",
			"destination_service_namespace": "cloudlab", "destination_service_name": "order"}
		downs := 0
		for _, a := range e.Alerts() {
			if a.Labels["impact"] != "store-unavailable" {
				continue
			}
			downs++
			source := alertLabels(a)
			if source["store"] == "" {
				source["store"] = "postgresql" // DataStoreDown: the store comes from the StatefulSet's name
			}
			store := source["store"]
			for _, other := range stores {
				target := map[string]string{}
				for k, v := range slo {
					target[k] = v
				}
				target[storeLabel(other)] = "client"
				got, err := am.Inhibits(source, target)
				require.NoError(t, err)
				assert.Equal(t, other == store, got, "%s: %s (store %s) down; SLO alert of a client of %s: inhibited?", env, a.Alert, store, other)
			}
			sameStore := map[string]string{"alertname": "SomeMemberAlert", "severity": "warning", "team": "data", "store": store, "namespace": "cloudlab-data"}
			got, err := am.Inhibits(source, sameStore)
			require.NoError(t, err)
			assert.True(t, got, "%s: %s must silence the other alerts of %s", env, a.Alert, store)
			otherStore := map[string]string{"alertname": "SomeMemberAlert", "severity": "warning", "team": "data", "store": "not-" + store, "namespace": "cloudlab-data"}
			got, err = am.Inhibits(source, otherStore)
			require.NoError(t, err)
			assert.False(t, got, "%s: %s must not silence another store's alerts", env, a.Alert)
			got, err = am.Inhibits(source, source)
			require.NoError(t, err)
			assert.False(t, got, "%s: %s must not silence itself", env, a.Alert)
		}
		assert.Positive(t, downs, "%s: no alert says a store is down (impact=store-unavailable)", env)

		slow := map[string]string{}
		for k, v := range slo {
			slow[k] = v
		}
		slow["alertname"], slow["severity"] = "ServiceErrorBudgetBurnSlow", "warning"
		got, err := am.Inhibits(slo, slow)
		require.NoError(t, err)
		assert.True(t, got, "%s: the fast burn of a service silences its slow burn", env)
		slow["destination_service_name"] = "payment"
		got, err = am.Inhibits(slo, slow)
		require.NoError(t, err)
		assert.False(t, got, "%s: one service's fast burn must not silence another service's alerts", env)
		unrelated := map[string]string{"alertname": "ArgoCDApplicationOutOfSync", "severity": "warning", "team": "platform"}
		got, err = am.Inhibits(map[string]string{"alertname": "CertificateExpiryImminent", "severity": "critical", "team": "platform"}, unrelated)
		require.NoError(t, err)
		assert.False(t, got, "%s: a critical alert must not silence an unrelated warning", env)
	}
}

// catalogStoreLabels is the catalog's store client labels (data.cloudlab.io/<store>), as the
// services' pods carry them in any cluster: the stores, sorted.
func catalogStoreLabels(t *testing.T) []string {
	catalogStores := map[string]bool{}
	for _, c := range repo(t).Clusters {
		for _, o := range objectsOf(c, "Deployment", "cloudlab") {
			labels, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
			for k := range labels {
				if s, ok := strings.CutPrefix(k, "data.cloudlab.io/"); ok {
					catalogStores[s] = true
				}
			}
		}
	}
	require.NotEmpty(t, catalogStores, "no service pod carries a data.cloudlab.io/<store> label")
	var stores []string
	for s := range catalogStores {
		stores = append(stores, s)
	}
	sort.Strings(stores)
	return stores
}

// recordingRuleExpr is the expression of the environment's recording rule record ("" if none).
func recordingRuleExpr(e *monitoring.Env, record string) string {
	var expr string
	for _, r := range e.Rules {
		for _, g := range r.Groups {
			for _, rule := range g.Rules {
				if rule.Record == record {
					expr = rule.Expr
				}
			}
		}
	}
	return expr
}
