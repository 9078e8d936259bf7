{{/*
Expand the name of the chart.
*/}}
{{- define "service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "service.labels" -}}
helm.sh/chart: {{ include "service.chart" . }}
{{ include "service.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The Secret holding the Kafka cluster's CA certificate (Strimzi: <cluster>-cluster-ca-cert).
*/}}
{{- define "service.clusterCaSecret" -}}
{{- default (printf "%s-cluster-ca-cert" .Values.kafka.cluster) .Values.kafka.clusterCaSecret }}
{{- end }}

{{/*
Whether the client speaks TLS / SASL to the brokers.
*/}}
{{- define "service.kafkaTls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{ end }}
{{- end }}
{{- define "service.kafkaSasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{/*
Most replicas worth running with KEDA: the partitions of the consumed topics (aiokafka's default
round-robin assignor spreads all of them over the group), and no more than autoscaling.maxReplicas.
*/}}
{{- define "service.kedaMaxReplicas" -}}
{{- $partitions := 0 }}
{{- range .Values.kafka.topics }}
{{- if .consumed }}
{{- $partitions = add $partitions .partitions }}
{{- end }}
{{- end }}
{{- min (int .Values.autoscaling.maxReplicas) $partitions }}
{{- end }}
