#!/usr/bin/env bash
# After the code is deployed: create the Event Grid subscriptions that need it
# (infra/modules/events.bicep): blob created in uploads -> the blob trigger, SMS delivery
# reports -> delivery_report, and Defender's scan results -> record_scan_result (the verdict
# the scan waits for). Idempotent; run after every code deployment.
#
# Run by azd (postdeploy hook), or by hand:
#   AZURE_SUBSCRIPTION_ID=<id> AZURE_RESOURCE_GROUP=<group> infra/hooks/postdeploy.sh
# BLOB_FUNCTION_NAME / DELIVERY_FUNCTION_NAME / VERDICT_FUNCTION_NAME override the names.

set -euo pipefail
# shellcheck source=infra/hooks/common.sh
. "$(dirname "$0")/common.sh"

here="$(cd "$(dirname "$0")" && pwd)"
app="$(output AZURE_FUNCTION_APP_NAME)"
storage="$(output AZURE_STORAGE_ACCOUNT_NAME)"
storage_topic="$(output STORAGE_SYSTEM_TOPIC_NAME)"
acs_topic="$(output ACS_SYSTEM_TOPIC_NAME)"
scan_topic="$(output SCAN_RESULTS_TOPIC_NAME)"
dead_letter="$(output EVENTGRID_DEADLETTER_CONTAINER)"

deploy_subscriptions() {
  azs deployment group create \
    --resource-group "$AZURE_RESOURCE_GROUP" \
    --name enclose-events \
    --template-file "$here/../modules/events.bicep" \
    --parameters \
      functionAppName="$app" \
      storageAccountName="$storage" \
      storageSystemTopicName="$storage_topic" \
      communicationSystemTopicName="$acs_topic" \
      scanResultsTopicName="$scan_topic" \
      deadLetterContainerName="$dead_letter" \
      blobFunctionName="${BLOB_FUNCTION_NAME:-scan_uploaded_blob}" \
      deliveryFunctionName="${DELIVERY_FUNCTION_NAME:-delivery_report}" \
      verdictFunctionName="${VERDICT_FUNCTION_NAME:-record_scan_result}" \
    --output none
}

echo "Event Grid: subscribing $app to uploads, SMS delivery reports and Defender's scan results"
# Event Grid checks each endpoint when the subscription is made, and a just-deployed app
# needs a minute or two before its functions and the blobs_extension key are there.
retry "${HOOK_SUBSCRIPTIONS_WAIT_SECONDS:-600}" "the deployed functions (Event Grid checks each endpoint)" deploy_subscriptions ||
  die "could not create the Event Grid subscriptions; see the deployment 'enclose-events' in the portal"
echo "Done."
