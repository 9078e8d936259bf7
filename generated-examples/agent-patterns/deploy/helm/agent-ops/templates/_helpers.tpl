{{/*
Expand the name of the chart.
*/}}
{{- define "agent-ops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "agent-ops.fullname" -}}
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
{{- define "agent-ops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "agent-ops.labels" -}}
helm.sh/chart: {{ include "agent-ops.chart" . }}
{{ include "agent-ops.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "agent-ops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent-ops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
A pod's topologySpreadConstraints: topologySpreadConstraints as it is, or over zones then nodes for the pods the
selector labels (a YAML map) pick. Called with (list . <selector labels>).
*/}}
{{- define "agent-ops.topologySpread" -}}
{{- $root := index . 0 }}
{{- if $root.Values.topologySpreadConstraints }}
{{- toYaml $root.Values.topologySpreadConstraints }}
{{- else }}
{{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
- maxSkew: 1
  topologyKey: {{ $key }}
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- index $ 1 | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- end }}
{{- end }}
{{- end }}

{{/*
The Secret holding the Kafka cluster's CA certificate (Strimzi: <cluster>-cluster-ca-cert).
*/}}
{{- define "agent-ops.clusterCaSecret" -}}
{{- default (printf "%s-cluster-ca-cert" .Values.kafka.cluster) .Values.kafka.clusterCaSecret }}
{{- end }}

{{/*
Whether the client speaks TLS / SASL to the brokers.
*/}}
{{- define "agent-ops.kafkaTls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{ end }}
{{- end }}
{{- define "agent-ops.kafkaClientCertificate" -}}
{{- if eq .Values.kafka.securityProtocol "SSL" }}true{{ end }}
{{- end }}
{{- define "agent-ops.kafkaSasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{/*
The files the shared ConfigMap names (KAFKA_SSL_CAFILE, KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE), mounted where it
names them: every pod that reads the ConfigMap and talks to Kafka mounts these, or it fails on a missing file.
*/}}
{{- define "agent-ops.kafkaVolumeMounts" -}}
{{- if include "agent-ops.kafkaTls" . }}
- name: cluster-ca
  mountPath: /etc/kafka/cluster-ca
  readOnly: true
{{- end }}
{{- if include "agent-ops.kafkaClientCertificate" . }}
- name: kafka-user
  mountPath: /etc/kafka/user
  readOnly: true
{{- end }}
{{- end }}
{{- define "agent-ops.kafkaVolumes" -}}
{{- if include "agent-ops.kafkaTls" . }}
- name: cluster-ca
  secret:
    secretName: {{ include "agent-ops.clusterCaSecret" . }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- if include "agent-ops.kafkaClientCertificate" . }}
# Strimzi's User Operator writes the KafkaUser's certificate and key into this Secret.
- name: kafka-user
  secret:
    secretName: {{ .Values.kafka.user }}
    items:
      - key: user.crt
        path: user.crt
      - key: user.key
        path: user.key
{{- end }}
{{- end }}

{{/*
Settings that come from Secrets or the pod, never from the ConfigMap: the KafkaUser's password.
*/}}
{{- define "agent-ops.secretEnv" -}}
{{- if include "agent-ops.kafkaSasl" . }}
# Strimzi's User Operator writes this Secret for the KafkaUser.
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.user }}
      key: password
{{- end }}
{{- end }}

{{/*
Most replicas worth running with KEDA: the partitions of the consumed topics (the group's assignor spreads
all of them over its members; one more member would own none), and no more than autoscaling.maxReplicas.
*/}}
{{- define "agent-ops.kedaMaxReplicas" -}}
{{- $partitions := 0 }}
{{- range .Values.kafka.topics }}
{{- if .consumed }}
{{- $partitions = add $partitions .partitions }}
{{- end }}
{{- end }}
{{- min (int .Values.autoscaling.maxReplicas) $partitions }}
{{- end }}

{{/*
The brokers' bootstrap address, fully qualified so that it resolves from every namespace: KEDA's operator
queries Kafka from its own. By default Strimzi's bootstrap Service of the scram listener (9094) of
kafka.cluster, in the release's namespace (where the KafkaUser's Secret and the cluster CA must be too).
*/}}
{{- define "agent-ops.bootstrapServers" -}}
{{- $port := get (dict "PLAINTEXT" "9092" "SSL" "9093" "SASL_SSL" "9094" "SASL_PLAINTEXT" "9094") .Values.kafka.securityProtocol }}
{{- default (printf "%s-kafka-bootstrap.%s.svc:%s" .Values.kafka.cluster .Release.Namespace $port) .Values.kafka.bootstrapServers }}
{{- end }}

{{/*
Whether KEDA scales the Deployment: autoscaling.mode keda on a cluster that serves KEDA's API. Elsewhere no
ScaledObject is rendered and the Deployment runs autoscaling.minReplicas replicas, so that the install works.
*/}}
{{- define "agent-ops.keda" -}}
{{- if and (eq .Values.autoscaling.mode "keda") (.Capabilities.APIVersions.Has "keda.sh/v1alpha1") }}true{{ end }}
{{- end }}

{{/*
The schema settings, shared by the ConfigMap and the schema registration Job (a pre-install hook runs before
the ConfigMap exists), so that both use one subject strategy and one compatibility level.
*/}}
{{- define "agent-ops.schemaSettings" -}}
SCHEMA_REGISTRY_URL: {{ .Values.schemaRegistry.url | quote }}
SCHEMA_SUBJECT_STRATEGY: {{ .Values.schemaRegistry.subjectStrategy | quote }}
SCHEMA_COMPATIBILITY: {{ .Values.schemaRegistry.compatibility | quote }}
{{- end }}

{{/*
Seconds a pod may take to stop: the preStop sleep; the POSTs in flight when SIGTERM comes, each bounded by the
publish timeout; then the lifespan's steps, each bounded by the shutdown timeout: finishing the message in hand,
settling the consumer (committing; under exactly-once, flushing its transactional producers), flushing the
producer; plus 10 s for leaving the group and closing the clients. Past it the kubelet sends SIGKILL.
*/}}
{{- define "agent-ops.terminationGracePeriodSeconds" -}}
{{- add (int .Values.preStopSleepSeconds) (int .Values.timeouts.publishSeconds) (mul 3 (int .Values.timeouts.shutdownSeconds)) 10 }}
{{- end }}

{{/*
The readiness probe's timeout: above the service's own bound on GET /health/ready (a metadata round trip, then
the lag lookups, each within READY_TIMEOUT_SECONDS), so that the probe gets the service's answer.
*/}}
{{- define "agent-ops.readinessTimeoutSeconds" -}}
{{- add (mul 2 (int .Values.timeouts.readySeconds)) 1 }}
{{- end }}


{{/*
The consumer's own Deployment (worker.enabled). Its pods are named "<name>-worker" in their selector labels, so that
the API's Service and PodDisruptionBudget never select them.
*/}}
{{- define "agent-ops.workerFullname" -}}
{{- printf "%s-worker" (include "agent-ops.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "agent-ops.workerSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-worker" (include "agent-ops.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- define "agent-ops.workerLabels" -}}
helm.sh/chart: {{ include "agent-ops.chart" . }}
{{ include "agent-ops.workerSelectorLabels" . }}
app.kubernetes.io/component: worker
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The Deployment that consumes, which autoscaling scales: the worker's with worker.enabled, else the service's own.
*/}}
{{- define "agent-ops.consumerFullname" -}}
{{- if .Values.worker.enabled }}{{ include "agent-ops.workerFullname" . }}{{ else }}{{ include "agent-ops.fullname" . }}{{ end }}
{{- end }}
