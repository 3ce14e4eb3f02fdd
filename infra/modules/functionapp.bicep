// The Function App: Flex Consumption (FC1), Python 3.11, system-assigned identity, code
// package in a blob container reached with that identity, and every app setting the code
// reads (shared_code/settings.py, ENVIRONMENT_NAMES). No setting holds a key or a
// connection string with a secret; the two secrets are Key Vault references.

param name string
param planName string
param location string
param tags object = {}

@description('azd service name, so azd deploy finds this app.')
param azdServiceName string = 'api'

param storageAccountName string
param deploymentContainerUrl string
param keyVaultName string
param acsEndpoint string
param applicationInsightsConnectionString string
param logAnalyticsWorkspaceId string

@description('The Functions host id (AzureFunctionsWebHost__hostid): lower-case letters, digits and dashes, at most 32 characters.')
@maxLength(32)
param hostId string

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Custom domain for the portal links (e.g. documents.example.nhs.uk); empty uses the app\'s own host name. Binding the domain and its certificate is a manual step.')
param customDomain string = ''

// Settings the app reads. Defaults are the contract's; main.bicep passes the operator's values.
param authIssuer string
param authAudience string
param authJwksUrl string
@description('The Entra ID app role a bearer token must carry in its roles claim (assign it to the practices\' users or the toolbar\'s identity).')
param authRequiredRole string = 'Messages.Send'
param smsSender string
param smsRatePerMinute int
param smsMaxAttempts int = 5
param linkTtlDays int
param allowedCountries string
param defenderVerdictTimeoutSeconds int
param maxAttachmentBytes int = 3145728
@description('The largest PDF or picture accepted; it is then made to fit maxAttachmentBytes.')
param maxUploadBytes int = 20971520
@description('Room for multipart boundaries and part headers around the largest upload; the host refuses a bigger request body.')
param multipartOverheadBytes int = 65536
param maxSegments int = 6
param maxAttachments int = 5
param maxDobAttempts int = 5
param sasTtlSeconds int = 60
param sessionTtlSeconds int = 900
param idempotencyTtlHours int = 24

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy for Flex Consumption is offered only in some regions; turn on properties.zoneRedundant where the region supports it.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-11-01' = {
  // checkov:skip=CKV_AZURE_222:GP practices' toolbars and patients' phones reach the app over the internet; there is no private network to put it in.
  // checkov:skip=CKV_AZURE_17:Client certificates cannot be asked of patients' browsers; the API authenticates with Entra ID bearer tokens.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero by design; always-ready instances are a cost choice left to the operator (functionAppConfig.scaleAndConcurrency.alwaysReady).
  // checkov:skip=CKV_AZURE_213:App Service health check is not available on Flex Consumption; availability is watched in Application Insights.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': azdServiceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Deployments use Entra ID tokens (azd, Core Tools, Azure CLI); no publishing passwords.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

var portalBaseUrl = empty(customDomain) ? 'https://${site.properties.defaultHostName}' : 'https://${customDomain}'

resource appSettings 'Microsoft.Web/sites/config@2024-11-01' = {
  // checkov reads this app-settings resource as if it were the site's web config; the checks below are about the site, answered there or not applicable:
  // checkov:skip=CKV_AZURE_13:The API checks Entra ID bearer tokens itself and the patient portal must open without a sign-in, so App Service Authentication stays off.
  // checkov:skip=CKV_AZURE_222:See the site resource: the app must be reachable from the internet.
  // checkov:skip=CKV_AZURE_63:HTTP logging is an App Service (IIS) log; Flex Consumption has none. Requests are logged to Application Insights and FunctionAppLogs.
  // checkov:skip=CKV_AZURE_65:Detailed error pages are an IIS feature; not on Flex Consumption, and errors are problem+json without internals by design.
  // checkov:skip=CKV_AZURE_66:Failed request tracing is an IIS feature; not on Flex Consumption.
  // checkov:skip=CKV_AZURE_80:.NET Framework version does not apply: the app is Python 3.11.
  // checkov:skip=CKV_AZURE_88:Azure Files mounts do not apply: the app keeps no files; code runs from the deployment package.
  parent: site
  name: 'appsettings'
  properties: {
    // Host and app storage, with the managed identity (no connection string).
    AzureWebJobsStorage__accountName: storageAccountName
    // Fixed, so the blob trigger's queue has a known name (main.bicep, hostId).
    AzureFunctionsWebHost__hostid: hostId
    // Telemetry: the host (classic Application Insights mode, see host.json) and the app's own span
    // exporter (shared_code/telemetry.py) send with the identity.
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
    // The Python worker's own Azure Monitor set-up stays off: depending on the worker's version one
    // of these makes it run configure_azure_monitor (azure-functions-python-worker, dispatcher.py),
    // whose pipeline cannot scrub portal tokens out of its spans.
    PYTHON_ENABLE_OPENTELEMETRY: 'false'
    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'false'
    // SMS through Communication Services' endpoint and the identity.
    ACS_ENDPOINT: acsEndpoint
    SMS_SENDER: smsSender
    SMS_DELIVERY_REPORTS: 'true'
    SMS_RATE_PER_MINUTE: string(smsRatePerMinute)
    SMS_MAX_ATTEMPTS: string(smsMaxAttempts)
    SMS_TIMEOUT_SECONDS: '10'
    // A try whose answer was lost waits this long for its delivery report before it is repeated.
    SMS_EVIDENCE_WAIT_SECONDS: '30'
    PORTAL_BASE_URL: portalBaseUrl
    // Bearer tokens from Microsoft Entra ID.
    AUTH_ISSUER: authIssuer
    AUTH_AUDIENCE: authAudience
    AUTH_JWKS_URL: authJwksUrl
    AUTH_REQUIRED_ROLE: authRequiredRole
    // Secrets: resolved by the platform with the app's identity (Key Vault Secrets User).
    DOB_HASH_KEY: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=dob-hash-key)'
    SESSION_KEY: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=session-key)'
    // Limits (the contract's defaults unless the operator changes them).
    MAX_ATTACHMENT_BYTES: string(maxAttachmentBytes)
    MAX_UPLOAD_BYTES: string(maxUploadBytes)
    MAX_SEGMENTS: string(maxSegments)
    MAX_ATTACHMENTS: string(maxAttachments)
    MAX_DOB_ATTEMPTS: string(maxDobAttempts)
    LINK_TTL_DAYS: string(linkTtlDays)
    SAS_TTL_SECONDS: string(sasTtlSeconds)
    SESSION_TTL_SECONDS: string(sessionTtlSeconds)
    IDEMPOTENCY_TTL_HOURS: string(idempotencyTtlHours)
    // The host's own request body limit (default 100 MB): the Functions host sets Kestrel's
    // MaxRequestBodySize from it (azure-functions-host, src/WebJobs.Script.WebHost/Middleware/
    // HttpRequestBodySizeMiddleware.cs), so a bigger body is refused with 413 by the host, from its
    // Content-Length, before the Python worker buffers any of it. Sized as Settings.upload_limit.
    FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: string(max(maxUploadBytes, maxAttachmentBytes) + multipartOverheadBytes)
    // Real numbers only in Azure: Ofcom's drama range is for docs and tests.
    ALLOW_DRAMA_NUMBERS: 'false'
    // Status callbacks only to https and public addresses in Azure.
    CALLBACK_ALLOW_LOCAL: 'false'
    ALLOWED_COUNTRIES: allowedCountries
    // Microsoft Defender for Storage scans uploads; its scan-result event brings the verdict.
    SCANNER: 'defender'
    // Flex Consumption has no polling blob trigger: new uploads arrive as Event Grid events.
    BLOB_TRIGGER_SOURCE: 'EventGrid'
    DEFENDER_VERDICT_TIMEOUT_SECONDS: string(defenderVerdictTimeoutSeconds)
  }
}

resource siteDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'function-logs'
  scope: site
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'FunctionAppLogs'
        enabled: true
      }
    ]
  }
}

output name string = site.name
output id string = site.id
output principalId string = site.identity.principalId
output defaultHostName string = site.properties.defaultHostName
output portalBaseUrl string = portalBaseUrl
