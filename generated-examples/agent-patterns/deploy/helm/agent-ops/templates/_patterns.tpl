{{/*
A Deployment running one of the patterns' processes: `python -m <package> <args>`, without the HTTP API. It serves
/metrics on patternMetricsPort once its consumer has started, which its readiness probe asks and a PodMonitor of its
own scrapes (with serviceMonitor.enabled); it exits non-zero when its consumer stops on an error, and the kubelet
restarts it. Its pods carry a name of their own (<chart>-<component>), so no other Deployment, Service or PDB selects
them.
Called with (dict "root" $ "component" "..." "args" (list ...) "replicas" N), and optionally "singleton" true for a
process of which two must never overlap (it is stopped before its replacement starts: strategy Recreate) and
"secretEnv" (list (dict "name" ENV "secret" SECRET "key" KEY) ...) for variables read from Secrets of the pattern's.
*/}}
{{- define "agent-ops.patternDeployment" -}}
{{- $root := .root -}}
{{- $name := printf "%s-%s" (include "agent-ops.name" $root) .component | trunc 63 | trimSuffix "-" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ printf "%s-%s" (include "agent-ops.fullname" $root) .component | trunc 63 | trimSuffix "-" }}
  labels:
    helm.sh/chart: {{ include "agent-ops.chart" $root }}
    app.kubernetes.io/name: {{ $name }}
    app.kubernetes.io/instance: {{ $root.Release.Name }}
    app.kubernetes.io/part-of: {{ include "agent-ops.name" $root }}
    app.kubernetes.io/component: {{ .component }}
    app.kubernetes.io/managed-by: {{ $root.Release.Service }}
spec:
  replicas: {{ .replicas }}
  {{- if .singleton }}
  strategy:
    type: Recreate
  {{- end }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ $name }}
      app.kubernetes.io/instance: {{ $root.Release.Name }}
  template:
    metadata:
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
      labels:
        app.kubernetes.io/name: {{ $name }}
        app.kubernetes.io/instance: {{ $root.Release.Name }}
        app.kubernetes.io/part-of: {{ include "agent-ops.name" $root }}
        app.kubernetes.io/component: {{ .component }}
        # The schema registry's NetworkPolicy (deploy/strimzi/schema-registry) admits pods with this label.
        kafka-events.io/schema-registry-client: "true"
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: {{ include "agent-ops.terminationGracePeriodSeconds" $root }}
      securityContext:
        runAsNonRoot: true
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: {{ .component }}
          image: "{{ $root.Values.image.repository }}:{{ $root.Values.image.tag | default $root.Chart.AppVersion }}"
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["python", "-m", "agent_ops"]
          args: {{ toJson .args }}
          ports:
            - name: metrics
              containerPort: {{ $root.Values.patternMetricsPort }}
              protocol: TCP
          readinessProbe:
            httpGet:
              path: /metrics
              port: metrics
            periodSeconds: 10
          envFrom:
            - configMapRef:
                name: {{ include "agent-ops.fullname" $root }}
          env:
            - name: KAFKA_CLIENT_ID
              value: {{ printf "%s-%s" $root.Values.kafka.clientId .component | quote }}
            - name: METRICS_PORT
              value: {{ $root.Values.patternMetricsPort | quote }}
            {{- if include "agent-ops.kafkaSasl" $root }}
            # Strimzi's User Operator writes this Secret for the KafkaUser.
            - name: KAFKA_SASL_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $root.Values.kafka.user }}
                  key: password
            {{- end }}
            {{- range .secretEnv }}
            - name: {{ .name }}
              valueFrom:
                secretKeyRef:
                  name: {{ .secret }}
                  key: {{ .key }}
            {{- end }}
          resources:
            {{- toYaml $root.Values.resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop:
                - ALL
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with include "agent-ops.kafkaVolumeMounts" $root | trim }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- with include "agent-ops.kafkaVolumes" $root | trim }}
        {{- . | nindent 8 }}
        {{- end }}
{{- if $root.Values.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: {{ printf "%s-%s" (include "agent-ops.fullname" $root) .component | trunc 63 | trimSuffix "-" }}
  labels:
    app.kubernetes.io/name: {{ $name }}
    app.kubernetes.io/instance: {{ $root.Release.Name }}
    {{- with $root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ $name }}
      app.kubernetes.io/instance: {{ $root.Release.Name }}
  podMetricsEndpoints:
    - port: metrics
      path: /metrics
      interval: {{ $root.Values.serviceMonitor.interval }}
{{- end }}
{{- end }}
