{{/*
The chart renders one set of objects per catalog entry: a per-service template ranges over
.Values.services and, for each name, calls svc.resolve on a fresh dict (root, name). svc.resolve
fills that dict in place (a JSON round trip through include would turn integers into floats):
  .name     the service name (the catalog key)
  .svc      serviceDefaults with the entry merged over it
  .callers  the services whose `calls` name this one, in name order
  .public   whether it has a public route (the ingress gateway calls it)
  .Values, .Release, .Chart   those of the release, for cluster-wide values
*/}}
{{- define "svc.resolve" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $svc := mergeOverwrite (deepCopy $root.Values.serviceDefaults) (deepCopy (index $root.Values.services $name)) -}}
{{- $callers := list -}}
{{- range $other, $entry := $root.Values.services }}
{{- if has $name ($entry.calls | default list) }}{{ $callers = append $callers $other }}{{ end }}
{{- end -}}
{{- $_ := set . "svc" $svc -}}
{{- $_ := set . "callers" $callers -}}
{{- $_ := set . "public" (ne $svc.publicRoute.prefix "") -}}
{{- $_ := set . "Values" $root.Values -}}
{{- $_ := set . "Release" $root.Release -}}
{{- $_ := set . "Chart" $root.Chart -}}
{{- include "svc.validate" . -}}
{{- end -}}

{{/* Selector labels: stable for the life of the Deployment (never add to them). The instance
is the service, not the release: every service is its own instance of the chart, and its
selector must not change if the release is renamed. */}}
{{- define "svc.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .name }}
{{- end -}}

{{/* Labels of every object of a service. No version label: the environment's kustomize
`images:` owns the tag, so a version rendered here would be wrong after promotion. */}}
{{- define "svc.labels" -}}
{{ include "svc.selectorLabels" . }}
{{ include "chart.commonLabels" . }}
{{- end -}}

{{/* Labels every object of this chart carries. */}}
{{- define "chart.commonLabels" -}}
app.kubernetes.io/component: service
app.kubernetes.io/part-of: cloudlab
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Metadata of a namespaced object named after the service. */}}
{{- define "svc.metadata" -}}
name: {{ .name }}
namespace: {{ .Release.Namespace }}
labels:
  {{- include "svc.labels" . | nindent 2 }}
{{- end -}}

{{/* The label by which a data store's NetworkPolicy admits its clients' pods
(platform/data/<store>/networkpolicy.yaml): data.cloudlab.io/<store>: client. */}}
{{- define "svc.storeClientLabels" -}}
{{- range $i, $store := .svc.dataStores }}{{ if $i }}{{ "\n" }}{{ end }}data.cloudlab.io/{{ $store }}: client{{ end -}}
{{- end -}}

{{/* The replica count the service never goes below: what the PDB protects. */}}
{{- define "svc.guaranteedReplicas" -}}
{{- if .svc.autoscaling.enabled }}{{ .svc.autoscaling.minReplicas }}{{ else }}{{ .svc.replicas }}{{ end -}}
{{- end -}}

{{/* SPIFFE principal of a workload's ServiceAccount. */}}
{{- define "svc.principal" -}}
{{ .root.Values.mesh.trustDomain }}/ns/{{ .namespace }}/sa/{{ .account }}
{{- end -}}

{{/* Cross-field checks of one service the schema cannot express, each failing with a message
that names the value. */}}
{{- define "svc.validate" -}}
{{- $where := printf "services.%s" .name -}}
{{- range .svc.dataStores }}
{{- if not (hasKey $.Values.stores .) }}
{{- fail (printf "%s.dataStores: %q is not a store of this chart (known: %s)" $where . (keys $.Values.stores | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- range .svc.calls }}
{{- if eq . $.name }}{{ fail (printf "%s.calls: %q calls itself" $where .) }}{{ end }}
{{- if not (hasKey $.Values.services .) }}
{{- fail (printf "%s.calls: %q is not a service of the catalog (known: %s)" $where . (keys $.Values.services | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- if and .svc.autoscaling.enabled (gt (int .svc.autoscaling.minReplicas) (int .svc.autoscaling.maxReplicas)) }}
{{- fail (printf "%s.autoscaling.minReplicas (%v) is greater than autoscaling.maxReplicas (%v)" $where .svc.autoscaling.minReplicas .svc.autoscaling.maxReplicas) }}
{{- end }}
{{- if lt (int .svc.shutdown.terminationGracePeriodSeconds) (int .svc.shutdown.preStopSleepSeconds) }}
{{- fail (printf "%s.shutdown.terminationGracePeriodSeconds must be at least shutdown.preStopSleepSeconds" $where) }}
{{- end }}
{{- end -}}

{{/* Checks across the catalog: public route prefixes are distinct and none starts another
(Istio matches a prefix as a string, so /api/auth would also take /api/authors). */}}
{{- define "catalog.validate" -}}
{{- $prefixes := dict -}}
{{- range $name, $_ := .Values.services }}
{{- $s := dict "root" $ "name" $name }}{{ include "svc.resolve" $s }}
{{- with $s.svc.publicRoute.prefix }}{{ $_ := set $prefixes $name . }}{{ end }}
{{- end }}
{{- range $a, $pa := $prefixes }}
{{- range $b, $pb := $prefixes }}
{{- if and (ne $a $b) (hasPrefix $pa $pb) }}
{{- fail (printf "services.%s.publicRoute.prefix %q starts with services.%s.publicRoute.prefix %q: the gateway could not tell them apart (use distinct first path segments)" $b $pb $a $pa) }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The standard OpenTelemetry SDK environment of a service's container
(https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/): export over
OTLP gRPC to the collector's Service, the service's name, its resource attributes, and the
sampler with the environment's ratio (ConfigMap tracing.environmentConfigMap, generated by
clusters/<env>/services/). */}}
{{- define "svc.otelEnv" -}}
{{- $c := .Values.tracing.collector -}}
{{- $cm := .Values.tracing.environmentConfigMap -}}
- name: K8S_POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: DEPLOYMENT_ENVIRONMENT
  valueFrom: {configMapKeyRef: {name: {{ $cm }}, key: DEPLOYMENT_ENVIRONMENT}}
- name: OTEL_SERVICE_NAME
  value: {{ .name }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "service.namespace={{ .Release.Namespace }},deployment.environment.name=$(DEPLOYMENT_ENVIRONMENT),k8s.namespace.name={{ .Release.Namespace }},k8s.pod.name=$(K8S_POD_NAME)"
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: "http://{{ $c.service }}.{{ $c.namespace }}.svc.cluster.local:{{ $c.ports.grpc }}"
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: grpc
- name: OTEL_TRACES_SAMPLER
  value: {{ .Values.tracing.sampler }}
- name: OTEL_TRACES_SAMPLER_ARG
  valueFrom: {configMapKeyRef: {name: {{ $cm }}, key: OTEL_TRACES_SAMPLER_ARG}}
{{- end -}}
