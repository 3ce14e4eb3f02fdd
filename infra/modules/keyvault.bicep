// Key Vault for the two app secrets (DOB_HASH_KEY and SESSION_KEY). Access is by Azure RBAC
// only; deleted secrets and the vault itself can be recovered for 90 days and cannot be
// purged early (purge protection), so losing the date-of-birth hash key by mistake is
// recoverable. The secret values are not created here: infra/hooks/postprovision.sh
// creates them once, only when missing (see README.md, "Deploy to Azure" for why).

@description('Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object = {}
param logAnalyticsWorkspaceId string

@description('Object id of whoever runs the post-provision hook, which creates the secrets once. Empty: nobody gets secret write access from this template.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

// Key Vault Secrets Officer: create secrets (the hook), never needed by the app.
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  // checkov:skip=CKV_AZURE_109:The Flex Consumption app has no virtual network here and Key Vault references are resolved over the public endpoint; access is Azure RBAC only, every read is audited.
  // checkov:skip=CKV_AZURE_189:Same as CKV_AZURE_109: a private vault needs VNet integration and private DNS, which this template does not deploy.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// Every read of a secret is logged.
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'vault-audit'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
