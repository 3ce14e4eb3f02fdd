// Event Grid subscriptions that need the deployed code, so they cannot be part of main.bicep:
// - blob created in uploads -> the blob trigger (EventGrid source), through the blobs
//   extension webhook, whose key (blobs_extension) exists only once the app has started;
// - SMS delivery reports -> the delivery_report function (an Azure Function endpoint, which
//   Event Grid validates against the deployed function);
// - Defender for Storage's scan results -> the record_scan_result function, whose record is
//   the verdict the scan waits for (shared_code/scan_verdicts.py).
// Deployed by infra/hooks/postdeploy.sh after every code deployment; safe to run again.
// The extension key is read here by listKeys at deployment time and never leaves Azure
// Resource Manager (it is not printed, passed as a parameter or stored in outputs).

param functionAppName string
param storageSystemTopicName string
param communicationSystemTopicName string
param scanResultsTopicName string
param storageAccountName string
param deadLetterContainerName string

@description('Name of the blob trigger function on uploads (functions/scan.py).')
param blobFunctionName string = 'scan_uploaded_blob'

@description('Name of the Event Grid trigger function for SMS delivery reports (functions/delivery.py).')
param deliveryFunctionName string = 'delivery_report'

@description('Name of the Event Grid trigger function that records Defender\'s verdicts (functions/scan.py).')
param verdictFunctionName string = 'record_scan_result'

resource site 'Microsoft.Web/sites@2024-11-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource storageSystemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: storageSystemTopicName
}

resource communicationSystemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: communicationSystemTopicName
}

resource scanResultsTopic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: scanResultsTopicName
}

var blobsExtensionKey = listKeys('${site.id}/host/default', '2024-11-01').systemKeys.blobs_extension

resource uploadsToScan 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: storageSystemTopic
  name: 'uploads-to-scan'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${site.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${blobFunctionName}&code=${blobsExtensionKey}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/uploads/blobs/'
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

resource deliveryReports 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: communicationSystemTopic
  name: 'sms-delivery-reports'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${site.id}/functions/${deliveryFunctionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Communication.SMSDeliveryReportReceived'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

resource scanResults 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = {
  parent: scanResultsTopic
  name: 'scan-results'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${site.id}/functions/${verdictFunctionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Security.MalwareScanningResult'
      ]
    }
    // A verdict delivered late still counts while the scan is being retried (its blob trigger
    // runs up to five times), so Event Grid keeps trying, as for the other subscriptions.
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}
