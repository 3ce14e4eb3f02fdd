// Storage for Enclose: the Functions host, the app's blobs, tables and queues, and the
// Flex Consumption deployment package. Only the managed identity reaches the data plane
// (shared key access is off); patients download through short user delegation SAS URLs,
// which is why the blob endpoint stays reachable from the internet.

@description('Storage account name (3-24 lower-case letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object = {}

@description('Redundancy. Zone- and geo-redundant by default; every UK pair keeps the data in the UK.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_GZRS'

@description('Container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Container where Event Grid puts events it could not deliver.')
param deadLetterContainerName string

@description('How long a portal link lives (LINK_TTL_DAYS); documents outlive it by documentSafetyMarginDays.')
@minValue(1)
param linkTtlDays int

@description('Days a document is kept after the link lifetime before the lifecycle policy deletes it. The app purges expired documents itself; this is the safety net behind it.')
@minValue(1)
param documentSafetyMarginDays int

@description('Days an upload is kept: the blob trigger moves it within minutes, so anything older is left over.')
@minValue(1)
param uploadsRetentionDays int

@description('Days a rejected file is kept for investigation.')
@minValue(1)
param quarantineRetentionDays int

@description('Log Analytics workspace for blob access logs.')
param logAnalyticsWorkspaceId string

@description('The Functions host id (AzureFunctionsWebHost__hostid); it names the blob trigger\'s queue.')
param hostId string

// The containers, tables and queues the app uses (shared_code/storage.py).
var appContainers = [
  'uploads'
  'documents'
  'quarantine'
  'template-documents'
  'rescans'
]
var appTables = [
  'attachments'
  'messages'
  'links'
  'events'
  'idempotency'
  'pacing'
  'scanverdicts'
  'templates'
  'history'
  'callbacks'
  'batches'
]
var appQueues = [
  'dispatch'
  'dispatch-poison'
  'callbacks'
  'callbacks-poison'
  'batch-rows'
  'batch-rows-poison'
  'batch-dispatch'
  'batch-dispatch-poison'
]

// The Functions host's own containers and queues with an identity-based AzureWebJobsStorage
// (azure-functions-host and the storage blobs extension, Microsoft.Azure.WebJobs.Extensions.
// Storage.Blobs: HostContainerNames, HostQueueNames): keys, locks, timer schedules and blob
// receipts in azure-webjobs-hosts/-secrets; the blob trigger's shared queue, named after the
// host id, into which its Event Grid webhook puts each new blob, and its poison queue. They
// are made here, not by the host, so the app's roles can be scoped to each one.
var hostContainers = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]
var hostQueues = [
  'azure-webjobs-blobtrigger-${hostId}'
  'webjobs-blobtrigger-poison'
]

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  // checkov:skip=CKV_AZURE_59:Patients download documents straight from the blob endpoint with a short user delegation SAS, so the endpoint must be reachable from the internet; every container is private and shared key access is off.
  // checkov:skip=CKV_AZURE_35:Same reason as CKV_AZURE_59: default network action Allow is what lets a patient's browser fetch a SAS URL.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    dnsEndpointType: 'Standard'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: account
  name: 'default'
  properties: {
    // Protects against deleting a whole container by mistake; single blobs are not kept (see above).
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    deleteRetentionPolicy: {
      enabled: false
    }
    isVersioningEnabled: false
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = [for container in appContainers: {
  parent: blobService
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

resource hostContainerResources 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = [for container in hostContainers: {
  parent: blobService
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-01-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-01-01' = [for table in appTables: {
  parent: tableService
  name: table
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2025-01-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2025-01-01' = [for queue in appQueues: {
  parent: queueService
  name: queue
}]

resource hostQueueResources 'Microsoft.Storage/storageAccounts/queueServices/queues@2025-01-01' = [for queue in hostQueues: {
  parent: queueService
  name: queue
}]

// Lifecycle rules run once a day, so they are a backstop, not the purge: the retention timer
// deletes a document within an hour of its link expiring. Documents count from their last
// modification, so the app must not keep a link alive longer than linkTtlDays after the
// document was written (or touched).
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2025-01-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          enabled: true
          name: 'documents-safety-net'
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'documents/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: linkTtlDays + documentSafetyMarginDays
                }
              }
            }
          }
        }
        {
          enabled: true
          name: 'uploads-leftovers'
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'uploads/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: uploadsRetentionDays
                }
              }
            }
          }
        }
        {
          enabled: true
          name: 'quarantine-expiry'
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'quarantine/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: quarantineRetentionDays
                }
              }
            }
          }
        }
        {
          enabled: true
          // A template document's copy for Defender's re-scan is deleted once its verdict is read;
          // this clears any a run that died left behind. template-documents/ has no rule on purpose:
          // a template keeps its documents as long as it uses them.
          name: 'rescans-leftovers'
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'rescans/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: 1
                }
              }
            }
          }
        }
        {
          enabled: true
          name: 'deadletter-expiry'
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${deadLetterContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  // Dead-lettered delivery reports carry patients' numbers: kept a week, long
                  // enough to look into a failure, not a month.
                  daysAfterModificationGreaterThan: 7
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    containers
    deadLetterContainer
  ]
}

// Who read, wrote or deleted which blob, and when: the audit trail for documents.
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'blob-audit'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'
// The names the app's roles are scoped to (modules/access.bicep).
output appContainers array = appContainers
output hostContainers array = hostContainers
output appQueues array = appQueues
output hostQueues array = hostQueues
