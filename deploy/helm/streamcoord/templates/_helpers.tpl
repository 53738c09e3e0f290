{{/* Names: "<release>-<chart>" unless overridden, cut to 63 characters (DNS label). */}}
{{- define "streamcoord.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "streamcoord.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of every resource; "component" is the role (coordinator, worker-<name>, serve, ingest). */}}
{{- define "streamcoord.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: streamcoord
{{ include "streamcoord.selectorLabels" . }}
{{- end -}}

{{- define "streamcoord.selectorLabels" -}}
app.kubernetes.io/name: {{ include "streamcoord.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "streamcoord.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "streamcoord.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "streamcoord.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The Kafka settings as STREAMCOORD_KAFKA_* variables: plain values for what is not secret, and
secretKeyRef for credentials. Rendering fails when SASL is asked for without a Secret.
*/}}
{{- define "streamcoord.kafkaEnv" -}}
{{- $kafka := .Values.kafka -}}
{{- if not .Values.config.existingSecret }}
- name: STREAMCOORD_KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required" $kafka.bootstrapServers | quote }}
- name: STREAMCOORD_KAFKA_SECURITY_PROTOCOL
  value: {{ $kafka.securityProtocol | quote }}
- name: STREAMCOORD_KAFKA_TOPIC_PREFIX
  value: {{ $kafka.topicPrefix | quote }}
- name: STREAMCOORD_KAFKA_CLIENT_ID
  value: {{ $kafka.clientId | quote }}
{{- else }}
- name: STREAMCOORD_CONFIG
  value: {{ printf "/etc/streamcoord/config/%s" .Values.config.key | quote }}
{{- end }}
{{- if hasPrefix "SASL_" $kafka.securityProtocol }}
{{- $secret := required "kafka.sasl.existingSecret: SASL needs an existing Secret with the password" $kafka.sasl.existingSecret }}
- name: STREAMCOORD_KAFKA_SASL_MECHANISM
  value: {{ $kafka.sasl.mechanism | quote }}
{{- if $kafka.sasl.usernameKey }}
- name: STREAMCOORD_KAFKA_SASL_PLAIN_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ $secret | quote }}, key: {{ $kafka.sasl.usernameKey | quote }}}
{{- else }}
- name: STREAMCOORD_KAFKA_SASL_PLAIN_USERNAME
  value: {{ required "kafka.sasl.username or kafka.sasl.usernameKey is required for SASL" $kafka.sasl.username | quote }}
{{- end }}
- name: STREAMCOORD_KAFKA_SASL_PLAIN_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret | quote }}, key: {{ $kafka.sasl.passwordKey | quote }}}
{{- end }}
{{- with $kafka.tls.existingSecret }}
{{- if $kafka.tls.caKey }}
- name: STREAMCOORD_KAFKA_SSL_CAFILE
  value: {{ printf "/etc/streamcoord/tls/%s" $kafka.tls.caKey | quote }}
{{- end }}
{{- if $kafka.tls.certKey }}
- name: STREAMCOORD_KAFKA_SSL_CERTFILE
  value: {{ printf "/etc/streamcoord/tls/%s" $kafka.tls.certKey | quote }}
{{- end }}
{{- if $kafka.tls.keyKey }}
- name: STREAMCOORD_KAFKA_SSL_KEYFILE
  value: {{ printf "/etc/streamcoord/tls/%s" $kafka.tls.keyKey | quote }}
{{- end }}
{{- if $kafka.tls.keyPasswordKey }}
- name: STREAMCOORD_KAFKA_SSL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $kafka.tls.keyPasswordKey | quote }}}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Writable directories (the root file system is read-only) and the Secrets' files. */}}
{{- define "streamcoord.volumeMounts" -}}
- {name: tmp, mountPath: /tmp}
- {name: data, mountPath: /var/lib/streamcoord}
{{- if .Values.kafka.tls.existingSecret }}
- {name: kafka-tls, mountPath: /etc/streamcoord/tls, readOnly: true}
{{- end }}
{{- if .Values.config.existingSecret }}
- {name: config, mountPath: /etc/streamcoord/config, readOnly: true}
{{- end }}
{{- end -}}

{{- define "streamcoord.volumes" -}}
- {name: tmp, emptyDir: {}}
- {name: data, emptyDir: {}}
{{- with .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret: {secretName: {{ . | quote }}, defaultMode: 0440}
{{- end }}
{{- with .Values.config.existingSecret }}
- name: config
  secret: {secretName: {{ . | quote }}, defaultMode: 0440}
{{- end }}
{{- end -}}

{{/* The pod-level settings every workload shares. */}}
{{- define "streamcoord.podCommon" -}}
serviceAccountName: {{ include "streamcoord.serviceAccountName" .root }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "streamcoord.volumes" .root | nindent 2 }}
{{- end -}}

{{/* The container-level settings every workload shares (after name, args and ports). */}}
{{- define "streamcoord.containerCommon" -}}
image: {{ include "streamcoord.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
workingDir: /var/lib/streamcoord
securityContext:
  {{- toYaml .root.Values.containerSecurityContext | nindent 2 }}
resources:
  {{- toYaml (required (printf "%s: resources are required" .component) .values.resources) | nindent 2 }}
{{- $envFrom := concat (.root.Values.extraEnvFrom | default list) (.values.extraEnvFrom | default list) }}
{{- with $envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  {{- include "streamcoord.volumeMounts" .root | nindent 2 }}
{{- end -}}
