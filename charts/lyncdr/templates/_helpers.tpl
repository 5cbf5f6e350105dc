{{/* Chart name, overridable. */}}
{{- define "lyncdr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every resource name: <release>-lyncdr, or the release name alone when it already says lyncdr. */}}
{{- define "lyncdr.fullname" -}}
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

{{/* Labels on every resource. */}}
{{- define "lyncdr.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "lyncdr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lyncdr
{{- end }}

{{/* Labels that select the operator's pods (immutable in a Deployment: never add to them). */}}
{{- define "lyncdr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lyncdr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "lyncdr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lyncdr.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository@digest when a digest is pinned, else repository:tag. */}}
{{- define "lyncdr.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Namespace of the Lease used for leader election: always the release namespace. */}}
{{- define "lyncdr.leaseNamespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{/* PromQL label matchers selecting this installation's series (see prometheusRule.selector). */}}
{{- define "lyncdr.metricSelector" -}}
{{- default (printf "namespace=%q" .Release.Namespace) .Values.prometheusRule.selector }}
{{- end }}

{{/* The Secrets rules of the operator's credentials access, as "namespace/name" keys grouped by namespace. */}}
{{- define "lyncdr.secretNamesByNamespace" -}}
{{- $byNs := dict }}
{{- range .Values.rbac.secrets.names }}
{{- $ns := default $.Values.watchNamespace .namespace }}
{{- if not $ns }}
{{- fail (printf "rbac.secrets.names: the entry %q needs a namespace (there is no watchNamespace to default to)" .name) }}
{{- end }}
{{- $_ := set $byNs $ns (append (get $byNs $ns | default list) .name) }}
{{- end }}
{{- toJson $byNs }}
{{- end }}
