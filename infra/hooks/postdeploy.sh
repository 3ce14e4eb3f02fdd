#!/usr/bin/env bash
# After the code is deployed: create the Event Grid subscriptions that need it
# (infra/modules/events.bicep): blob created in uploads -> the blob trigger, and SMS
# delivery reports -> delivery_report. Idempotent; run after every code deployment.
#
# Run by azd (postdeploy hook), or by hand:
#   AZURE_RESOURCE_GROUP=<group> infra/hooks/postdeploy.sh
# BLOB_FUNCTION_NAME / DELIVERY_FUNCTION_NAME override the function names.

set -euo pipefail
# shellcheck source=infra/hooks/common.sh
. "$(dirname "$0")/common.sh"

here="$(cd "$(dirname "$0")" && pwd)"
app="$(output AZURE_FUNCTION_APP_NAME)"
storage="$(output AZURE_STORAGE_ACCOUNT_NAME)"
storage_topic="$(output STORAGE_SYSTEM_TOPIC_NAME)"
acs_topic="$(output ACS_SYSTEM_TOPIC_NAME)"
dead_letter="$(output EVENTGRID_DEADLETTER_CONTAINER)"

deploy_subscriptions() {
  az deployment group create \
    --resource-group "$AZURE_RESOURCE_GROUP" \
    --name enclose-events \
    --template-file "$here/../modules/events.bicep" \
    --parameters \
      functionAppName="$app" \
      storageAccountName="$storage" \
      storageSystemTopicName="$storage_topic" \
      communicationSystemTopicName="$acs_topic" \
      deadLetterContainerName="$dead_letter" \
      blobFunctionName="${BLOB_FUNCTION_NAME:-scan_uploaded_blob}" \
      deliveryFunctionName="${DELIVERY_FUNCTION_NAME:-delivery_report}" \
    --output none
}

echo "Event Grid: subscribing $app to uploads and SMS delivery reports"
# Event Grid checks each endpoint when the subscription is made, and a just-deployed app
# needs a minute or two before its functions and the blobs_extension key are there.
retry 600 deploy_subscriptions || die "could not create the Event Grid subscriptions; see the deployment 'enclose-events' in the portal"
echo "Done."
