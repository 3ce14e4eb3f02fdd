// Everything the Function App's managed identity may do, in one place, each grant at the
// narrowest scope that covers the calls made under it: by the app's code, by the Functions
// host (identity-based AzureWebJobsStorage) and by the platform (the Flex Consumption package).
// tests/unit/infra/test_bicep.py keeps a table of those calls and fails if one is not covered
// here, or if a grant covers none.
//
// No storage data role is granted on the whole account, and none of these roles carries
// blobs/tags/write (or tags/read): the app's identity cannot write the blob index tags an
// attacker would need to fake Defender's verdict, and the app does not read them either (it
// takes the verdict from Defender's scan-result event, functions/scan.py).

@description('Object id of the Function App\'s system-assigned identity.')
param appPrincipalId string

param storageAccountName string
param keyVaultName string
param communicationServiceName string
param applicationInsightsName string

@description('The app\'s containers (uploads, documents, quarantine).')
param appContainers array

@description('The Functions host\'s containers (keys, locks, timers, blob receipts).')
param hostContainers array

@description('The container of the Flex Consumption deployment package.')
param deploymentContainerName string

@description('The app\'s queues (dispatch and its poison queue).')
param appQueues array

@description('The Functions host\'s queues (the blob trigger\'s shared queue and its poison queue).')
param hostQueues array

// Built-in role definition ids (the same in every tenant).
// Storage Blob Data Contributor: read, write and delete blobs (leases included). Unlike Data
// Owner it has no blobs/tags/* data action and cannot change ACLs or ownership.
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
// Storage Blob Delegator: get a user delegation key, to sign the portal's download SAS. The key
// is an account-level object, so this is granted on the account; it carries no data action,
// and a SAS signed with it grants at most what the identity's data roles grant (documents).
var storageBlobDelegator = 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
// Storage Queue Data Contributor: send, receive and delete messages.
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Storage Table Data Contributor: table rows, and creating tables.
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Key Vault Secrets User: read DOB_HASH_KEY and SESSION_KEY (Key Vault references).
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
// Communication and Email Service Owner: the built-in role Communication Services accepts
// for sending with Entra ID; it is far narrower than Contributor and scoped to this one
// resource. ACS does not honour custom roles, so nothing narrower exists.
var communicationServiceOwner = '09976791-48a7-449e-bb21-39d1a415f350'
// Monitoring Metrics Publisher: send telemetry to Application Insights with local auth off.
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' existing = {
  parent: storage
  name: 'default'
}

resource appContainerScopes 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' existing = [for name in appContainers: {
  parent: blobService
  name: name
}]

resource hostContainerScopes 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' existing = [for name in hostContainers: {
  parent: blobService
  name: name
}]

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' existing = {
  parent: blobService
  name: deploymentContainerName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2025-01-01' existing = {
  parent: storage
  name: 'default'
}

resource appQueueScopes 'Microsoft.Storage/storageAccounts/queueServices/queues@2025-01-01' existing = [for name in appQueues: {
  parent: queueService
  name: name
}]

resource hostQueueScopes 'Microsoft.Storage/storageAccounts/queueServices/queues@2025-01-01' existing = [for name in hostQueues: {
  parent: queueService
  name: name
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-01-01' existing = {
  parent: storage
  name: 'default'
}

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource communication 'Microsoft.Communication/communicationServices@2025-05-01' existing = {
  name: communicationServiceName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// The app's own blobs: uploads (read by the scan), documents (copies, SAS downloads, purge),
// quarantine. A server-side copy from uploads is authorised by reading uploads.
resource appBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in appContainers: {
  name: guid(appContainerScopes[i].id, appPrincipalId, storageBlobDataContributor)
  scope: appContainerScopes[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

// The host's blobs. Microsoft's table of roles for host storage asks for Blob Data Owner on
// the account ("Connecting to host storage with an identity", learn.microsoft.com/azure/
// azure-functions/functions-reference); what the host does there is read, write, delete and
// lease blobs in these two containers, which Data Contributor covers.
resource hostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in hostContainers: {
  name: guid(hostContainerScopes[i].id, appPrincipalId, storageBlobDataContributor)
  scope: hostContainerScopes[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

// Flex Consumption stores the deployed package here and runs from it, with this identity
// (functionAppConfig.deployment.storage.authentication: SystemAssignedIdentity).
resource packageBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deploymentContainer.id, appPrincipalId, storageBlobDataContributor)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Same name as when it was granted beside Blob Data Owner, so redeploying keeps the one grant.
resource blobDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, storageBlobDelegator)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDelegator)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueueMessages 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in appQueues: {
  name: guid(appQueueScopes[i].id, appPrincipalId, storageQueueDataContributor)
  scope: appQueueScopes[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource hostQueueMessages 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in hostQueues: {
  name: guid(hostQueueScopes[i].id, appPrincipalId, storageQueueDataContributor)
  scope: hostQueueScopes[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

// The table service rather than each table: besides the app's tables, the host writes its
// diagnostic events to a table named for the month (AzureFunctionsDiagnosticEventsYYYYMM,
// azure-functions-host DiagnosticEventTableStorageRepository), created, listed and purged as
// months pass, so no fixed list of tables can cover it. The account holds no other tables.
resource tableRows 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(tableService.id, appPrincipalId, storageTableDataContributor)
  scope: tableService
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource smsSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communication.id, appPrincipalId, communicationServiceOwner)
  scope: communication
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', communicationServiceOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}
