// Event Grid topics and Microsoft Defender for Storage.
//
// A storage account can have only one Event Grid system topic, and Defender's on-upload
// malware scanning needs one too. This template creates the topic first and Defender's
// setting after it, so Defender subscribes to the same topic instead of creating its own.
// The blob trigger's subscription (uploads -> function), the SMS delivery report subscription
// and the scan results subscription (Defender's verdicts -> function) are created after the code
// is deployed, by modules/events.bicep through infra/hooks/postdeploy.sh: they need the functions.

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

@description('Blob name prefixes Defender does not scan (`container/` is one container; a prefix without the slash, every container starting with it). Everything but uploads.')
param defenderUnscannedPrefixes array

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

// Where Defender publishes each scan result. The app's verdict comes from here: an Event Grid
// subscription (modules/events.bicep) delivers each result to the record_scan_result function,
// which keeps it for the scan to read (shared_code/scan_verdicts.py). Blob index tags are not
// tamper-resistant (Microsoft says so: "Malware scanning in Defender for Storage", learn.
// microsoft.com/azure/defender-for-cloud/defender-for-storage-malware-scan) and the app's
// identity could write them; it cannot publish to this topic (no role on it, no key).
resource scanResultsTopic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_192:Microsoft documents no identity or role through which Defender for Storage publishes scan results, only the topic as a destination; with local auth off every verdict could be dropped and every upload rejected. Its keys are readable only by the group's owners and contributors; the app holds none and has no role on the topic.
  // checkov:skip=CKV_AZURE_193:Defender for Storage cannot deliver scan results to a topic behind a private endpoint or network rules (confirmed by Microsoft in MicrosoftDocs/azure-docs issue 114522), so the topic stays public.
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
        filters: {
          excludeBlobsWithPrefix: defenderUnscannedPrefixes
        }
      }
      // The API's enum spelling (azure-rest-api-specs, Microsoft.Security 2025-06-01,
      // defenderForStorageSettings.json: blobIndexTags | None). The tags are for people looking
      // at a blob in the portal; the app never reads them.
      blobScanResultsOptions: 'blobIndexTags'
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

// The scan results topic's identity may write undeliverable verdicts to the dead-letter container.
resource scanResultsDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, scanResultsTopicName, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: scanResultsTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output storageSystemTopicName string = storageSystemTopic.name
output communicationSystemTopicName string = communicationSystemTopic.name
output scanResultsTopicName string = scanResultsTopic.name
