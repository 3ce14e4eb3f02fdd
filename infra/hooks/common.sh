#!/usr/bin/env bash
# Shared by the hooks: find the deployment's outputs. azd exports them as environment
# variables; when run by hand after `az deployment group create`, read them from the
# deployment (AZURE_RESOURCE_GROUP and, if not "main", AZURE_DEPLOYMENT_NAME).

set -euo pipefail

die() {
  echo "error: $*" >&2
  exit 1
}

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is required; see the README, section Deploy to Azure"

[ -n "${AZURE_RESOURCE_GROUP:-}" ] || die "set AZURE_RESOURCE_GROUP to the resource group you deployed to"

# output NAME: the value of one deployment output, from the environment or the deployment.
output() {
  local name="$1"
  local value="${!name:-}"
  if [ -z "$value" ]; then
    value="$(az deployment group show \
      --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "${AZURE_DEPLOYMENT_NAME:-main}" \
      --query "properties.outputs.${name}.value" --output tsv)"
  fi
  [ -n "$value" ] || die "deployment output $name is missing; did 'az deployment group create' finish?"
  printf '%s' "$value"
}

# retry SECONDS COMMAND...: run COMMAND until it succeeds, for about SECONDS. New role
# assignments and freshly deployed functions take a few minutes to be seen everywhere.
# (HOOK_RETRY_INTERVAL and HOOK_RETRY_TRIES change the pace; the tests use them.)
retry() {
  local limit="$1"
  shift
  local interval="${HOOK_RETRY_INTERVAL:-20}"
  local tries="${HOOK_RETRY_TRIES:-$((limit / (interval > 0 ? interval : 1)))}"
  until "$@"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    echo "  not ready yet; trying again in ${interval} s" >&2
    sleep "$interval"
  done
}
