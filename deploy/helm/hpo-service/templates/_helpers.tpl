{{/* Names, labels and shared snippets of the hpo-service chart. */}}

{{- define "hpo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart>, or <release> when it already contains the chart name. */}}
{{- define "hpo.fullname" -}}
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

{{/* "<fullname>-<suffix>" no longer than max (default 63): dict "root" . "suffix" s ["max" n] */}}
{{- define "hpo.componentName" -}}
{{- $max := int (default 63 .max) -}}
{{- $prefix := include "hpo.fullname" .root | trunc (int (sub $max (add1 (len .suffix)))) | trimSuffix "-" -}}
{{- printf "%s-%s" $prefix .suffix -}}
{{- end -}}

{{- define "hpo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable for the life of a release (never the version or chart). */}}
{{- define "hpo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hpo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Recommended labels of every object (add app.kubernetes.io/component per object). */}}
{{- define "hpo.labels" -}}
helm.sh/chart: {{ include "hpo.chart" . }}
{{ include "hpo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hpo-service
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "hpo.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Object names. */}}
{{- define "hpo.secretName" -}}{{ include "hpo.fullname" . }}{{- end -}}
{{- define "hpo.configMapName" -}}{{ include "hpo.fullname" . }}{{- end -}}
{{- define "hpo.apiName" -}}{{ include "hpo.fullname" . }}{{- end -}}
{{- define "hpo.postgresqlName" -}}
{{- include "hpo.componentName" (dict "root" . "suffix" "postgresql" "max" 52) -}}
{{- end -}}
{{- define "hpo.postgresqlHeadlessName" -}}
{{- include "hpo.componentName" (dict "root" . "suffix" "postgresql-hl") -}}
{{- end -}}
{{/* KubeRay shortens cluster names beyond 50 characters; stay within so that the head
     Service is "<name>-head-svc" as written below. */}}
{{- define "hpo.rayClusterName" -}}
{{- include "hpo.componentName" (dict "root" . "suffix" "ray" "max" 50) -}}
{{- end -}}
{{- define "hpo.rayHeadServiceName" -}}
{{- printf "%s-head-svc" (include "hpo.rayClusterName" .) -}}
{{- end -}}
{{- define "hpo.rayDashboardName" -}}
{{- include "hpo.componentName" (dict "root" . "suffix" "ray-dashboard") -}}
{{- end -}}
{{- define "hpo.sharedClaimName" -}}
{{- .Values.ray.storage.persistentVolumeClaim.existingClaim | default (include "hpo.componentName" (dict "root" . "suffix" "shared")) -}}
{{- end -}}
{{- define "hpo.serviceAccountName" -}}
{{- if .Values.service.serviceAccount.create -}}
{{- .Values.service.serviceAccount.name | default (include "hpo.fullname" .) -}}
{{- else -}}
{{- .Values.service.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Where each secret value lives: the chart's Secret unless an existing one is named. */}}
{{- define "hpo.apiTokensSecret" -}}
{{- .Values.service.apiTokens.existingSecret | default (include "hpo.secretName" .) -}}
{{- end -}}
{{- define "hpo.apiTokensKey" -}}
{{- if .Values.service.apiTokens.existingSecret -}}{{ .Values.service.apiTokens.existingSecretKey }}{{- else -}}api-tokens{{- end -}}
{{- end -}}
{{- define "hpo.rayAuthSecret" -}}
{{- .Values.ray.auth.existingSecret | default (include "hpo.secretName" .) -}}
{{- end -}}
{{- define "hpo.postgresqlSecret" -}}
{{- .Values.database.postgresql.existingSecret | default (include "hpo.secretName" .) -}}
{{- end -}}
{{- define "hpo.postgresqlKey" -}}
{{- if .Values.database.postgresql.existingSecret -}}{{ .Values.database.postgresql.existingSecretKey }}{{- else -}}postgres-password{{- end -}}
{{- end -}}
{{- define "hpo.databaseUrlSecret" -}}
{{- .Values.database.external.existingSecret | default (include "hpo.secretName" .) -}}
{{- end -}}
{{- define "hpo.databaseUrlKey" -}}
{{- if .Values.database.external.existingSecret -}}{{ .Values.database.external.existingSecretKey }}{{- else -}}database-url{{- end -}}
{{- end -}}

{{/* A secret value that stays stable across upgrades: the value given, else the one this
     release's Secret already holds (lookup), else a new random one.
     dict "root" . "key" k "value" v "length" n */}}
{{- define "hpo.secretValue" -}}
{{- if .value -}}
{{- .value -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "hpo.secretName" .root) -}}
{{- $data := dig "data" (dict) $existing -}}
{{- if hasKey $data .key -}}
{{- index $data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum (int .length) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* URLs. */}}
{{- define "hpo.rayAddress" -}}
{{- printf "http://%s:8265" (include "hpo.rayHeadServiceName" .) -}}
{{- end -}}
{{- define "hpo.publicUrl" -}}
{{- if .Values.service.publicUrl -}}
{{- .Values.service.publicUrl -}}
{{- else if .Values.service.ingress.enabled -}}
{{- printf "%s://%s%s" (ternary "https" "http" .Values.service.ingress.tls.enabled) .Values.service.ingress.host (.Values.service.ingress.path | trimSuffix "/") -}}
{{- end -}}
{{- end -}}
{{- define "hpo.rayDashboardUrl" -}}
{{- $d := .Values.ray.dashboard -}}
{{- if $d.url -}}
{{- $d.url -}}
{{- else if $d.ingress.enabled -}}
{{- printf "%s://%s%s" (ternary "https" "http" $d.ingress.tls.enabled) $d.ingress.host ($d.ingress.path | trimSuffix "/") -}}
{{- else -}}
http://127.0.0.1:8265
{{- end -}}
{{- end -}}
{{- define "hpo.storagePath" -}}
{{- if .Values.ray.storage.uri -}}
{{- .Values.ray.storage.uri -}}
{{- else -}}
{{- printf "%s/ray_results" (.Values.ray.storage.mountPath | trimSuffix "/") -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by the service and every Ray container (a YAML list). */}}
{{- define "hpo.rayAuthEnv" -}}
- name: RAY_AUTH_MODE
  value: token
- name: RAY_AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "hpo.rayAuthSecret" . }}
      key: auth_token
{{- end -}}

{{- define "hpo.databaseEnv" -}}
{{- if .Values.database.postgresql.enabled -}}
{{- $pg := .Values.database.postgresql -}}
- name: HPO_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "hpo.postgresqlSecret" . }}
      key: {{ include "hpo.postgresqlKey" . }}
- name: HPO_DATABASE_URL
  value: {{ printf "postgresql+psycopg://%s:$(HPO_DB_PASSWORD)@%s:5432/%s" ($pg.username | urlquery) (include "hpo.postgresqlName" .) ($pg.database | urlquery) | quote }}
{{- else -}}
- name: HPO_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "hpo.databaseUrlSecret" . }}
      key: {{ include "hpo.databaseUrlKey" . }}
{{- end -}}
{{- end -}}

{{/* Settings every Ray node needs to run a study driver (python -m service.runner). */}}
{{- define "hpo.rayNodeEnv" -}}
{{ include "hpo.rayAuthEnv" . }}
{{ include "hpo.databaseEnv" . }}
- name: HPO_STORAGE_PATH
  valueFrom:
    configMapKeyRef:
      name: {{ include "hpo.configMapName" . }}
      key: HPO_STORAGE_PATH
- name: HPO_HOME
  valueFrom:
    configMapKeyRef:
      name: {{ include "hpo.configMapName" . }}
      key: HPO_HOME
- name: PYTHONUNBUFFERED
  value: "1"
{{- with .Values.ray.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "hpo.sharedVolume" -}}
{{- if not .Values.ray.storage.uri -}}
- name: shared
  persistentVolumeClaim:
    claimName: {{ include "hpo.sharedClaimName" . }}
{{- end -}}
{{- end -}}
{{- define "hpo.sharedVolumeMount" -}}
{{- if not .Values.ray.storage.uri -}}
- name: shared
  mountPath: {{ .Values.ray.storage.mountPath }}
{{- end -}}
{{- end -}}

{{/* Checks the schema cannot express; they fail `helm template`/`install` with a reason. */}}
{{- define "hpo.validate" -}}
{{- $db := .Values.database -}}
{{- if and (not $db.postgresql.enabled) (not $db.external.url) (not $db.external.existingSecret) -}}
{{- fail "database: postgresql.enabled is false, so set database.external.existingSecret (preferred) or database.external.url" -}}
{{- end -}}
{{- if and $db.postgresql.enabled (or $db.external.url $db.external.existingSecret) -}}
{{- fail "database: set database.postgresql.enabled=false to use database.external" -}}
{{- end -}}
{{- if and (not .Values.ray.storage.uri) (not .Values.ray.storage.persistentVolumeClaim.create) (not .Values.ray.storage.persistentVolumeClaim.existingClaim) -}}
{{- fail "ray.storage: every Ray node needs the same HPO_STORAGE_PATH: set ray.storage.uri, or persistentVolumeClaim.create=true, or persistentVolumeClaim.existingClaim" -}}
{{- end -}}
{{- if not .Values.ray.workerGroups -}}
{{- fail "ray.workerGroups: give at least one worker group" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range .Values.ray.workerGroups -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "ray.workerGroups: the name %q is used twice" .name) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- if or (lt (int .replicas) (int .minReplicas)) (gt (int .replicas) (int .maxReplicas)) -}}
{{- fail (printf "ray.workerGroups[%s]: need minReplicas <= replicas <= maxReplicas (got %v <= %v <= %v)" .name .minReplicas .replicas .maxReplicas) -}}
{{- end -}}
{{- end -}}
{{- end -}}
