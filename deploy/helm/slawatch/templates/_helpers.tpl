{{- define "slawatch.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "slawatch.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "slawatch.labels" -}}
{{ include "slawatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "slawatch.secretName" -}}
{{- .Values.secret.existingSecret | default (include "slawatch.fullname" .) -}}
{{- end -}}

{{- /* files/slawatch.toml links to config/container.toml, the image's default. */ -}}
{{- define "slawatch.config" -}}
{{- .Values.config | default (.Files.Get "files/slawatch.toml") -}}
{{- end -}}
