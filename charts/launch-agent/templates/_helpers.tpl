{{/*
Names. W&B's chart already scoped most names by release; they are kept (so `helm upgrade` from W&B's chart
updates the Deployment in place instead of starting a second agent). The names W&B shared between releases
(git-creds, azure-storage-access-key, launch-agent-secret-env-vars) get the release name here.
*/}}
{{- define "launch-agent.fullname" -}}
{{- printf "launch-agent-%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "launch-agent.configMapName" -}}
{{- printf "wandb-launch-configmap-%s" .Release.Name | trunc 253 -}}
{{- end -}}

{{- define "launch-agent.serviceAccountName" -}}
{{- printf "wandb-launch-serviceaccount-%s" .Release.Name | trunc 253 -}}
{{- end -}}

{{- define "launch-agent.apiKeySecretName" -}}
{{- printf "wandb-api-key-%s" .Release.Name | trunc 253 -}}
{{- end -}}

{{- define "launch-agent.gitCredsSecretName" -}}
{{- printf "git-creds-%s" .Release.Name | trunc 253 -}}
{{- end -}}

{{- define "launch-agent.sshConfigName" -}}
{{- printf "ssh-config-%s" .Release.Name | trunc 253 -}}
{{- end -}}

{{- define "launch-agent.azureSecretName" -}}
{{- printf "azure-storage-access-key-%s" .Release.Name | trunc 253 -}}
{{- end -}}

{{- define "launch-agent.envSecretName" -}}
{{- printf "launch-agent-secret-env-vars-%s" .Release.Name | trunc 253 -}}
{{- end -}}

{{- define "launch-agent.metricsServiceName" -}}
{{- printf "launch-agent-%s-metrics" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The agent's name (LAUNCH_AGENT_NAME): the `wandb.ai/agent` label value of its Jobs, so at most 63 characters. */}}
{{- define "launch-agent.agentName" -}}
{{- $name := default .Release.Name .Values.agent.name -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "agent.name: the agent's name %q becomes the label wandb.ai/agent and must be at most 63 characters (set agent.name to a shorter name)" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* The namespace the agent runs in: `namespace`, or the release's namespace when it is empty. */}}
{{- define "launch-agent.namespace" -}}
{{- default .Release.Namespace .Values.namespace -}}
{{- end -}}

{{/* The namespaces the agent runs jobs in, as a JSON list: additionalTargetNamespaces plus its own, without repeats. */}}
{{- define "launch-agent.targetNamespaces" -}}
{{- $own := include "launch-agent.namespace" . -}}
{{- $all := list -}}
{{- range (default (list) .Values.additionalTargetNamespaces) -}}
{{- $all = append $all . -}}
{{- end -}}
{{- $all = append $all $own -}}
{{- toJson (uniq $all) -}}
{{- end -}}

{{/* The API key secret exists (made here, or promised by the user). */}}
{{- define "launch-agent.hasApiKeySecret" -}}
{{- if or .Values.agent.useExternalWandbSecret .Values.agent.apiKey -}}true{{- end -}}
{{- end -}}

{{- define "launch-agent.hasCABundle" -}}
{{- $cm := (default dict .Values.customCABundle).configMap | default dict -}}
{{- if and $cm.name $cm.key -}}true{{- end -}}
{{- end -}}

{{/* The selector label, exactly W&B's: a Deployment's selector cannot change, so an upgrade from W&B's chart needs it. */}}
{{- define "launch-agent.selectorLabels" -}}
app: {{ include "launch-agent.fullname" . }}
{{- end -}}

{{- define "launch-agent.labels" -}}
app.kubernetes.io/name: launch-agent
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{- end -}}

{{/*
Environment variables given as W&B's list [{name, value}] or as a map {NAME: value}, normalised to a list of
{name, value} sorted by name for the map form (so the rendering, and its checksum, is stable).
*/}}
{{- define "launch-agent.envList" -}}
{{- $in := .value -}}
{{- $out := list -}}
{{- if kindIs "map" $in -}}
{{- range $k := keys $in | sortAlpha -}}
{{- $out = append $out (dict "name" $k "value" (get $in $k)) -}}
{{- end -}}
{{- else if kindIs "slice" $in -}}
{{- range $i, $e := $in -}}
{{- if not (and (kindIs "map" $e) $e.name) -}}
{{- fail (printf "%s[%d]: expected {name, value}, found %v" $.path $i $e) -}}
{{- end -}}
{{- $out = append $out (dict "name" $e.name "value" $e.value) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
