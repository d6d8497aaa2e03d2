{{/* Names and labels shared by every template. */}}

{{- define "voxserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "voxserve.fullname" -}}
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

{{- define "voxserve.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "voxserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "voxserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voxserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end }}

{{- define "voxserve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "voxserve.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "voxserve.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the API keys: the user's, or the chart's. */}}
{{- define "voxserve.apiKeySecret" -}}
{{- default (printf "%s-api-keys" (include "voxserve.fullname" .)) .Values.apiKeys.existingSecret }}
{{- end }}

{{/* Redis URL: the chart's own Redis, else redis.url; empty when there is none. */}}
{{- define "voxserve.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s-redis:6379/0" (include "voxserve.fullname" .) }}
{{- else }}
{{- .Values.redis.url }}
{{- end }}
{{- end }}

{{/* The jobs' Redis URL: the object store's companion, else jobs.redisUrl. */}}
{{- define "voxserve.jobsRedisUrl" -}}
{{- if .Values.objectStore.enabled }}
{{- printf "redis://%s-jobs-redis:6379/0" (include "voxserve.fullname" .) }}
{{- else }}
{{- .Values.jobs.redisUrl }}
{{- end }}
{{- end }}

{{/* The Secret with the bucket's key pair: the object store's, else storage.existingSecret. */}}
{{- define "voxserve.storageSecret" -}}
{{- if .Values.objectStore.enabled }}
{{- printf "%s-objectstore" (include "voxserve.fullname" .) }}
{{- else }}
{{- .Values.storage.existingSecret }}
{{- end }}
{{- end }}
