#!/usr/bin/env bash
# After provisioning: create the app's two secrets in Key Vault, once.
#
# DOB_HASH_KEY keys the hash of every stored date of birth; replacing it makes every live
# link unverifiable, so this script never overwrites a secret that exists, and recovers a
# soft-deleted one instead of making a new one. SESSION_KEY signs portal sessions.
# Values are 32 random bytes (64 hex characters), written through a private temporary file
# so they never appear on a command line, in a deployment's history or in a log.
#
# Needs Key Vault Secrets Officer on the vault (main.bicep grants it to deployerPrincipalId).
# Run by azd (postprovision hook), or by hand:
#   AZURE_RESOURCE_GROUP=<group> infra/hooks/postprovision.sh

set -euo pipefail
# shellcheck source=infra/hooks/common.sh
. "$(dirname "$0")/common.sh"

vault="$(output AZURE_KEY_VAULT_NAME)"
secret_file=""
trap 'rm -f "${secret_file:-}"' EXIT

secret_names() {
  az keyvault secret list --vault-name "$vault" --query "[].name" --output tsv
}

deleted_secret_names() {
  az keyvault secret list-deleted --vault-name "$vault" --query "[].name" --output tsv
}

ensure_secret() {
  local name="$1"
  local existing deleted
  existing="$(secret_names)"
  if printf '%s\n' "$existing" | grep -qx "$name"; then
    echo "  $name: exists, left as it is"
    return 0
  fi
  deleted="$(deleted_secret_names)"
  if printf '%s\n' "$deleted" | grep -qx "$name"; then
    echo "  $name: was deleted; recovering the old value"
    az keyvault secret recover --vault-name "$vault" --name "$name" --output none
    return 0
  fi
  secret_file="$(mktemp)"
  chmod 600 "$secret_file"
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$secret_file"
  az keyvault secret set --vault-name "$vault" --name "$name" --file "$secret_file" \
    --encoding utf-8 --content-type "text/plain; 256-bit key, hex" --output none
  rm -f "$secret_file"
  echo "  $name: created"
}

echo "Key Vault $vault: making sure the app's secrets exist"
# The Secrets Officer role assignment from the deployment can take a few minutes to apply.
retry 600 secret_names >/dev/null || die "cannot list secrets in $vault: does $(az account show --query user.name -o tsv) have Key Vault Secrets Officer on it?"
ensure_secret dob-hash-key
ensure_secret session-key
echo "Done. The app resolves them as DOB_HASH_KEY and SESSION_KEY (Key Vault references)."
