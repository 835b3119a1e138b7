{{/* The service name: names every object and is app.kubernetes.io/name. */}}
{{- define "svc.name" -}}
{{- default .Release.Name .Values.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable for the life of the Deployment (never add to them). */}}
{{- define "svc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "svc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. No version label: the environment's kustomize `images:` owns the
tag, so a version rendered here would be wrong after promotion. */}}
{{- define "svc.labels" -}}
{{ include "svc.selectorLabels" . }}
app.kubernetes.io/component: service
app.kubernetes.io/part-of: cloudlab
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Metadata of a namespaced object named after the service. */}}
{{- define "svc.metadata" -}}
name: {{ include "svc.name" . }}
namespace: {{ .Release.Namespace }}
labels:
  {{- include "svc.labels" . | nindent 2 }}
{{- end -}}

{{/* The replica count the service never goes below: what the PDB protects. */}}
{{- define "svc.guaranteedReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicas }}{{ end -}}
{{- end -}}

{{/* SPIFFE principal of a workload's ServiceAccount. */}}
{{- define "svc.principal" -}}
{{ .root.Values.mesh.trustDomain }}/ns/{{ .namespace }}/sa/{{ .account }}
{{- end -}}

{{/* Services (not the gateway) that call this one. */}}
{{- define "svc.callers" -}}
{{- without .Values.calledBy "gateway" | toJson -}}
{{- end -}}

{{/* Cross-field checks the schema cannot express, each failing with a message naming the value. */}}
{{- define "svc.validate" -}}
{{- $name := include "svc.name" . -}}
{{- range .Values.dataStores }}
{{- if not (hasKey $.Values.stores .) }}
{{- fail (printf "dataStores: %q is not a store of this chart (known: %s)" . (keys $.Values.stores | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- if has $name .Values.calls }}{{ fail (printf "calls: %q calls itself" $name) }}{{ end }}
{{- if has "gateway" .Values.calls }}{{ fail "calls: \"gateway\" is a caller, not a callee; use calledBy" }}{{ end }}
{{- if and (has "gateway" .Values.calledBy) (not .Values.publicRoute) }}
{{- fail "publicRoute: required when calledBy contains \"gateway\" (the ingress gateway only routes public paths)" }}
{{- end }}
{{- if and .Values.publicRoute (not (has "gateway" .Values.calledBy)) }}
{{- fail (printf "publicRoute: %q is set but calledBy does not contain \"gateway\"" .Values.publicRoute) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%v) is greater than autoscaling.maxReplicas (%v)" .Values.autoscaling.minReplicas .Values.autoscaling.maxReplicas) }}
{{- end }}
{{- if lt (int .Values.shutdown.terminationGracePeriodSeconds) (int .Values.shutdown.preStopSleepSeconds) }}
{{- fail "shutdown.terminationGracePeriodSeconds must be at least shutdown.preStopSleepSeconds" }}
{{- end }}
{{- end -}}
