#!/usr/bin/env bash
# Shared by the hooks: the Azure CLI aimed at the deployment's subscription, the deployment's
# outputs, and bounded retries. azd exports its environment (outputs included) to the hooks;
# when run by hand after `az deployment group create`, outputs are read from the deployment
# (AZURE_RESOURCE_GROUP and, if not "main", AZURE_DEPLOYMENT_NAME).

set -euo pipefail

die() {
  echo "error: $*" >&2
  exit 1
}

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is required; see the README, section Deploy to Azure"

[ -n "${AZURE_RESOURCE_GROUP:-}" ] || die "set AZURE_RESOURCE_GROUP to the resource group you deployed to"
# azd sets it; without it `az` would act on whatever subscription the CLI last had selected.
[ -n "${AZURE_SUBSCRIPTION_ID:-}" ] ||
  die "set AZURE_SUBSCRIPTION_ID to the id of the subscription you deployed to (azd sets it; by hand: export AZURE_SUBSCRIPTION_ID=\"\$(az account show --query id -o tsv)\" after az account set)"

# azs ARGS...: the Azure CLI on the deployment's subscription. Every call in the hooks goes
# through here, so none can act on the CLI's default subscription instead of azd's.
azs() {
  az "$@" --subscription "$AZURE_SUBSCRIPTION_ID"
}

# resource_id TYPE NAME: the id of a resource in the deployment's group.
resource_id() {
  printf '/subscriptions/%s/resourceGroups/%s/providers/%s/%s' \
    "$AZURE_SUBSCRIPTION_ID" "$AZURE_RESOURCE_GROUP" "$1" "$2"
}

# output NAME: the value of one deployment output, from the environment or the deployment.
output() {
  local value
  value="$(output_or_empty "$1")"
  [ -n "$value" ] || die "deployment output $1 is missing; did 'az deployment group create' finish?"
  printf '%s' "$value"
}

# output_or_empty NAME: the same, empty when the deployment gave it no value.
output_or_empty() {
  local name="$1"
  local value="${!name:-}"
  if [ -z "$value" ]; then
    value="$(azs deployment group show \
      --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "${AZURE_DEPLOYMENT_NAME:-main}" \
      --query "properties.outputs.${name}.value" --output tsv)"
  fi
  printf '%s' "$value"
}

# retry SECONDS WHAT COMMAND...: run COMMAND until it succeeds, for about SECONDS, saying what
# it waits for. A role granted by the deployment minutes ago may not be in force yet (Azure
# documents up to ten minutes, sometimes more), and just-deployed functions take a minute or
# two to be found. Returns 1 once the time is up. (HOOK_RETRY_INTERVAL and HOOK_RETRY_TRIES
# change the pace; the tests use them.)
retry() {
  local limit="$1" what="$2"
  shift 2
  local interval="${HOOK_RETRY_INTERVAL:-20}"
  local tries="${HOOK_RETRY_TRIES:-$((limit / (interval > 0 ? interval : 1)))}"
  local total="$tries"
  until "$@"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    echo "  $what: not yet (try $((total - tries)) of $total); trying again in ${interval} s" >&2
    sleep "$interval"
  done
}
