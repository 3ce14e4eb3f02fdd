// Enclose in Azure: one resource group with storage, the Function App (Flex Consumption),
// Key Vault, Communication Services, Event Grid, Defender for Storage and monitoring.
//
//   az deployment group create -g <group> -f infra/main.bicep -p deployerPrincipalId=<your object id>
//
// then infra/hooks/postprovision.sh (secrets), publish the code, infra/hooks/postdeploy.sh
// (Event Grid subscriptions). `azd up` runs all of it. See README.md, "Deploy to Azure".

targetScope = 'resourceGroup'

@description('Short name for this deployment (azd environment name); part of every resource name.')
@minLength(1)
@maxLength(20)
param environmentName string = 'enclose'

@description('Region for everything except Communication Services and its topic, which are global.')
param location string = resourceGroup().location

@description('Token issuer the API accepts. Empty: Microsoft Entra ID v2 tokens of this tenant.')
param authIssuer string = ''

@description('Audience (aud) the API accepts: the application ID URI of the API\'s app registration.')
param authAudience string = 'api://enclose'

@description('JWKS URL for token signatures. Empty: this tenant\'s Entra ID keys.')
param authJwksUrl string = ''

@description('Custom domain for patients\' links (PORTAL_BASE_URL); empty uses the app\'s own https host name.')
param customDomain string = ''

@description('SMS sender: an alphanumeric sender ID (at most 11 characters, registered for the destination countries) or an ACS number in E.164.')
@minLength(1)
@maxLength(16)
param smsSender string = 'Enclose'

@minValue(1)
param smsRatePerMinute int = 600

@description('Days a portal link lives (LINK_TTL_DAYS).')
@minValue(1)
@maxValue(365)
param linkTtlDays int = 28

// A message's copy of its documents is made when its scans finish, which can be up to 30 days
// before its sendAt (MAX_SCHEDULE_DAYS); the link then lives linkTtlDays from sendAt. 30 + 7 days.
@description('Extra days the storage lifecycle policy keeps documents after the link lifetime, behind the app\'s own purge.')
@minValue(31)
param documentSafetyMarginDays int = 37

@description('Days before left-over uploads are deleted.')
@minValue(1)
param uploadsRetentionDays int = 2

@description('Days rejected files stay in quarantine.')
@minValue(1)
param quarantineRetentionDays int = 7

@description('Countries whose mobiles are accepted (ISO 3166 codes, comma-separated).')
param allowedCountries string = 'GB'

@description('Most GB Defender for Storage scans per month; -1 for no cap.')
param defenderCapGBPerMonth int = 1000

@description('How long the scan waits for Defender\'s verdict; keep it below host.json functionTimeout.')
@minValue(30)
param defenderVerdictTimeoutSeconds int = 120

@description('Where Communication Services keeps data at rest.')
param acsDataLocation string = 'UK'

@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_GZRS'

@description('Object id of the person or pipeline that runs infra/hooks/postprovision.sh; gets Key Vault Secrets Officer to create the two secrets once. azd fills it in.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@description('Name of the storage account\'s Event Grid system topic; set it to Defender\'s topic if Defender created one first.')
param storageSystemTopicName string = ''

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var prefix = toLower(environmentName)
var tags = {
  'azd-env-name': environmentName
  application: 'enclose'
}
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletter'
// The Functions host's id, set explicitly (AzureFunctionsWebHost__hostid) because it names the
// blob trigger's queue, which the app's queue role is scoped to. On Flex Consumption the default
// is a hash of the site's slot name that a template cannot compute. Lower-case letters, digits
// and dashes, at most 32 characters, not ending in a dash.
var hostId = 'enclose-${token}'
// Defender scans uploads and nothing else: every GB scanned is billed, and only uploads hold
// files nobody has checked. Each other container is excluded ('name/' is that one container;
// 'azure-webjobs-' every container of the Functions host).
var defenderUnscannedPrefixes = [
  'documents/'
  'quarantine/'
  'template-documents/'
  '${deploymentContainerName}/'
  '${deadLetterContainerName}/'
  'azure-webjobs-'
]
var tenantIssuer = 'https://login.microsoftonline.com/${tenant().tenantId}/v2.0'
var tenantJwks = 'https://login.microsoftonline.com/${tenant().tenantId}/discovery/v2.0/keys'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: 'log-${prefix}-${token}'
    applicationInsightsName: 'appi-${prefix}-${token}'
    location: location
    tags: tags
    retentionInDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: 'st${take(token, 22)}'
    location: location
    tags: tags
    skuName: storageSku
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    linkTtlDays: linkTtlDays
    documentSafetyMarginDays: documentSafetyMarginDays
    uploadsRetentionDays: uploadsRetentionDays
    quarantineRetentionDays: quarantineRetentionDays
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    hostId: hostId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: 'kv${take(token, 22)}'
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
  }
}

module communication 'modules/communication.bicep' = {
  name: 'communication'
  params: {
    name: 'acs-${prefix}-${token}'
    tags: tags
    dataLocation: acsDataLocation
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: 'func-${prefix}-${token}'
    planName: 'plan-${prefix}-${token}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    keyVaultName: keyVault.outputs.name
    acsEndpoint: communication.outputs.endpoint
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    customDomain: customDomain
    authIssuer: empty(authIssuer) ? tenantIssuer : authIssuer
    authAudience: authAudience
    authJwksUrl: empty(authJwksUrl) ? tenantJwks : authJwksUrl
    smsSender: smsSender
    smsRatePerMinute: smsRatePerMinute
    linkTtlDays: linkTtlDays
    allowedCountries: allowedCountries
    defenderVerdictTimeoutSeconds: defenderVerdictTimeoutSeconds
    hostId: hostId
  }
}

module access 'modules/access.bicep' = {
  name: 'access'
  params: {
    appPrincipalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    communicationServiceName: communication.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appContainers: storage.outputs.appContainers
    hostContainers: storage.outputs.hostContainers
    deploymentContainerName: deploymentContainerName
    appQueues: storage.outputs.appQueues
    hostQueues: storage.outputs.hostQueues
  }
}

module eventing 'modules/eventing.bicep' = {
  name: 'eventing'
  params: {
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    communicationServiceName: communication.outputs.name
    deadLetterContainerName: deadLetterContainerName
    storageSystemTopicName: empty(storageSystemTopicName) ? 'evgt-${prefix}-storage-${token}' : storageSystemTopicName
    communicationSystemTopicName: 'evgt-${prefix}-acs-${token}'
    scanResultsTopicName: 'evgt-${prefix}-scans-${token}'
    defenderCapGBPerMonth: defenderCapGBPerMonth
    defenderUnscannedPrefixes: defenderUnscannedPrefixes
  }
}

// azd copies these into its environment; the hooks read them (or ask the deployment).
output AZURE_LOCATION string = location
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_FUNCTION_APP_PRINCIPAL_ID string = functionApp.outputs.principalId
// Whom Key Vault Secrets Officer was granted to: postprovision.sh checks that the Azure CLI is
// signed in as the same principal before it touches the vault.
output DEPLOYER_PRINCIPAL_ID string = deployerPrincipalId
output PORTAL_BASE_URL string = functionApp.outputs.portalBaseUrl
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_ACS_NAME string = communication.outputs.name
output ACS_ENDPOINT string = communication.outputs.endpoint
output STORAGE_SYSTEM_TOPIC_NAME string = eventing.outputs.storageSystemTopicName
output ACS_SYSTEM_TOPIC_NAME string = eventing.outputs.communicationSystemTopicName
output SCAN_RESULTS_TOPIC_NAME string = eventing.outputs.scanResultsTopicName
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
