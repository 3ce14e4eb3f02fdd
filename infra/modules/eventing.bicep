// Event Grid topics and Microsoft Defender for Storage.
//
// A storage account can have only one Event Grid system topic, and Defender's on-upload
// malware scanning needs one too. This template creates the topic first and Defender's
// setting after it, so Defender subscribes to the same topic instead of creating its own.
// The blob trigger's subscription (uploads -> function) and the SMS delivery report
// subscription are created after the code is deployed, by modules/events.bicep through
// infra/hooks/postdeploy.sh: both need the functions to exist.

param location string
param tags object = {}
param storageAccountName string
param communicationServiceName string
param deadLetterContainerName string

@description('Name of the storage account\'s system topic. If Defender already made one (subscription-wide Defender plan enabled before this deployment), pass that topic\'s name here.')
param storageSystemTopicName string

param communicationSystemTopicName string
param scanResultsTopicName string

@description('Most GB Defender scans per month (-1: no cap). Past the cap uploads get no verdict and the app rejects them after DEFENDER_VERDICT_TIMEOUT_SECONDS.')
param defenderCapGBPerMonth int

// Storage Blob Data Contributor, for the system topic to write undeliverable events.
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' existing = {
  parent: storage
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource communication 'Microsoft.Communication/communicationServices@2025-05-01' existing = {
  name: communicationServiceName
}

resource storageSystemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: storageSystemTopicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource communicationSystemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: communicationSystemTopicName
  location: 'global'
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: communication.id
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

// The storage topic's identity may write to the dead-letter container and nowhere else.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, storageSystemTopicName, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: storageSystemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource communicationDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, communicationSystemTopicName, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: communicationSystemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// Where Defender publishes each scan result (for alerting and audit; the app itself reads
// the verdict from the blob's index tags).
resource scanResultsTopic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_192:Defender for Storage publishes scan results to this topic; Microsoft does not document that it still can when the topic's local auth is disabled. Verify in a subscription, then set disableLocalAuth true.
  // checkov:skip=CKV_AZURE_193:Defender for Storage publishes from Microsoft's network, so the topic cannot be private.
  name: scanResultsTopicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'EventGridSchema'
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource defender 'Microsoft.Security/defenderForStorageSettings@2025-06-01' = {
  name: 'current'
  scope: storage
  properties: {
    isEnabled: true
    overrideSubscriptionLevelSettings: true
    malwareScanning: {
      onUpload: {
        isEnabled: true
        capGBPerMonth: defenderCapGBPerMonth
      }
      blobScanResultsOptions: 'BlobIndexTags'
      scanResultsEventGridTopicResourceId: scanResultsTopic.id
    }
    // Sensitive data discovery would only tell us what we know: every document is sensitive.
    sensitiveDataDiscovery: {
      isEnabled: false
    }
  }
  dependsOn: [
    // Defender must find the account's system topic already there (see top of file).
    storageSystemTopic
  ]
}

output storageSystemTopicName string = storageSystemTopic.name
output communicationSystemTopicName string = communicationSystemTopic.name
output scanResultsTopicName string = scanResultsTopic.name
