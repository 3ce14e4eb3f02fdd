#!/usr/bin/env bash
# After provisioning: create the app's two secrets in Key Vault (once), make the app resolve
# its Key Vault references, and leave the app's identity with only the roles the template
# grants now.
#
# DOB_HASH_KEY keys the hash of every stored date of birth; replacing it makes every live
# link unverifiable, so this script never overwrites a secret that exists, and recovers a
# soft-deleted one instead of making a new one. SESSION_KEY signs portal sessions.
# Values are 32 random bytes (64 hex characters), written through a private temporary file
# so they never appear on a command line, in a deployment's history or in a log.
#
# Needs Key Vault Secrets Officer on the vault, which main.bicep grants to deployerPrincipalId
# (azd: the principal `azd auth login` signed in as); the Azure CLI must be signed in as that
# same principal. Run by azd (postprovision hook), or by hand:
#   AZURE_SUBSCRIPTION_ID=<id> AZURE_RESOURCE_GROUP=<group> infra/hooks/postprovision.sh

set -euo pipefail
# shellcheck source=infra/hooks/common.sh
. "$(dirname "$0")/common.sh"

vault="$(output AZURE_KEY_VAULT_NAME)"
app="$(output AZURE_FUNCTION_APP_NAME)"
secret_file=""
trap 'rm -f "${secret_file:-}"' EXIT

# -- who is signed in -----------------------------------------------------------------------

# The object id of the principal the Azure CLI is signed in as (a user or a service principal).
signed_in_principal() {
  local kind
  kind="$(azs account show --query user.type --output tsv)" ||
    die "the Azure CLI cannot use subscription $AZURE_SUBSCRIPTION_ID: run 'az login' as the account azd uses ('azd auth login')"
  case "$kind" in
    user) azs ad signed-in-user show --query id --output tsv ;;
    servicePrincipal) azs ad sp show --id "$(azs account show --query user.name --output tsv)" --query id --output tsv ;;
    *) die "the Azure CLI is signed in as a $kind, which cannot be matched to the principal azd granted Key Vault access to; sign in with 'az login' as that user or service principal" ;;
  esac
}

expected="$(output_or_empty DEPLOYER_PRINCIPAL_ID)"
[ -n "$expected" ] ||
  die "the deployment granted Key Vault Secrets Officer to nobody (deployerPrincipalId was empty), so nobody may create the secrets; deploy main.bicep again with deployerPrincipalId=\"\$(az ad signed-in-user show --query id -o tsv)\""
actual="$(signed_in_principal)" || exit 1
if [ "$(printf '%s' "$actual" | tr '[:upper:]' '[:lower:]')" != "$(printf '%s' "$expected" | tr '[:upper:]' '[:lower:]')" ]; then
  die "the Azure CLI is signed in as principal $actual, but Key Vault Secrets Officer was granted to $expected (the principal azd signed in as). Sign the Azure CLI in as the same account ('az login'), or run 'azd provision' again signed in as this one."
fi

# -- the secrets ----------------------------------------------------------------------------

secret_names() {
  azs keyvault secret list --vault-name "$vault" --query "[].name" --output tsv
}

deleted_secret_names() {
  azs keyvault secret list-deleted --vault-name "$vault" --query "[].name" --output tsv
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
    azs keyvault secret recover --vault-name "$vault" --name "$name" --output none
    return 0
  fi
  secret_file="$(mktemp)"
  chmod 600 "$secret_file"
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$secret_file"
  azs keyvault secret set --vault-name "$vault" --name "$name" --file "$secret_file" \
    --encoding utf-8 --content-type "text/plain; 256-bit key, hex" --output none
  rm -f "$secret_file"
  echo "  $name: created"
}

echo "Key Vault $vault: making sure the app's secrets exist"
retry "${HOOK_SECRETS_WAIT_SECONDS:-600}" "your Key Vault Secrets Officer role on $vault (granted by the deployment)" \
  secret_names >/dev/null ||
  die "cannot list secrets in $vault: the principal $actual has no Key Vault Secrets Officer role there in force yet; run this script again in a few minutes"
ensure_secret dob-hash-key
ensure_secret session-key

# -- the app resolves them ------------------------------------------------------------------

# App Service caches a Key Vault reference and retries an unresolved one only now and then;
# until it resolves, the app sees the literal @Microsoft.KeyVault(...) text. Ask it to resolve
# them now ("Use Key Vault references", learn.microsoft.com/azure/app-service/
# app-service-key-vault-references: POST .../config/configreferences/appsettings/refresh) and
# read each one's status until both are Resolved.
site="$(resource_id Microsoft.Web/sites "$app")"
references_api="$site/config/configreferences/appsettings"
unresolved=""

references_resolved() {
  local name status
  azs rest --method post --uri "$references_api/refresh?api-version=2022-03-01" --output none || return 1
  unresolved=""
  for name in DOB_HASH_KEY SESSION_KEY; do
    status="$(azs rest --method get --uri "$references_api/$name?api-version=2022-03-01" \
      --query properties.status --output tsv)" || status="unreadable"
    [ "$status" = "Resolved" ] || unresolved="$unresolved $name=${status:-unknown}"
  done
  [ -z "$unresolved" ]
}

echo "Function App $app: resolving its Key Vault references"
retry "${HOOK_REFERENCES_WAIT_SECONDS:-600}" "the app's Key Vault references (its Key Vault Secrets User role may still be propagating)" \
  references_resolved ||
  die "the app's Key Vault references are not resolved:${unresolved}. Its Key Vault Secrets User role may still be taking effect: run this script again in a few minutes (the API answers 503 until then); if it persists, look at the app's Environment variables page in the portal"
echo "  DOB_HASH_KEY and SESSION_KEY resolved"

# -- the app's roles ------------------------------------------------------------------------

principal="$(output AZURE_FUNCTION_APP_PRINCIPAL_ID)"
storage_id="$(resource_id Microsoft.Storage/storageAccounts "$(output AZURE_STORAGE_ACCOUNT_NAME)")"

# Earlier versions of this template granted Storage Blob Data Owner, Queue and Table Data
# Contributor on the whole storage account; a deployment never deletes what a template no
# longer declares, so remove those account-wide grants now that the scoped ones exist.
# (Storage Blob Delegator stays: it is the one role meant for the account.)
stale_roles='b7e6dc6d-f1e8-4753-8033-0f276bb0955b|974c5e8b-45b9-4653-ba55-5f855dd0fb88|0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
azs role assignment list --scope "$storage_id" \
  --query "[?principalId=='$principal'].[id, scope, roleDefinitionId]" --output tsv |
  while IFS=$'\t' read -r id scope role; do
    [ -n "$id" ] || continue
    # Only grants on the account itself (not inherited from above), only the roles above.
    [ "$(printf '%s' "$scope" | tr '[:upper:]' '[:lower:]')" = "$(printf '%s' "$storage_id" | tr '[:upper:]' '[:lower:]')" ] || continue
    printf '%s\n' "${role##*/}" | grep -Eqx "$stale_roles" || continue
    echo "  removing an account-wide storage role left by an earlier version: ${role##*/}"
    azs role assignment delete --ids "$id" --output none
  done

# azd uploads the code package next, and the platform writes it to storage with the app's
# identity, under a role this deployment may have granted seconds ago. A new role can take
# minutes to be in force (azure-dev issue 8026: the first deploy then fails with 403), so wait,
# within a bound, until the newest of the app's roles is a few minutes old.
settle="${HOOK_ROLE_SETTLE_SECONDS:-300}"
newest="$(azs role assignment list --all --query "[?principalId=='$principal'].createdOn" --output tsv | sort | tail -n 1)"
if [ -n "$newest" ]; then
  age="$(python3 -c 'import datetime, sys
t = datetime.datetime.fromisoformat(sys.argv[1].strip().replace("Z", "+00:00"))
t = t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)
print(max(0, int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())))' "$newest")"
  if [ "$age" -lt "$settle" ]; then
    echo "The app's roles were granted ${age} s ago; waiting $((settle - age)) s so they are in force before its code is uploaded"
    sleep "$((settle - age))"
  fi
fi

echo "Done. The app resolves its secrets as DOB_HASH_KEY and SESSION_KEY (Key Vault references)."
