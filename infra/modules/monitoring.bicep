// Log Analytics and Application Insights. Local (instrumentation key) ingestion is off:
// the app and the Functions host send telemetry with the managed identity, which needs
// Monitoring Metrics Publisher on the component (granted in access.bicep).

param workspaceName string
param applicationInsightsName string
param location string
param tags object = {}

@description('Days Log Analytics keeps logs and telemetry.')
@minValue(30)
@maxValue(730)
param retentionInDays int

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      // Only Entra identities query or send; no workspace keys.
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
    DisableIpMasking: false
  }
}

output workspaceId string = workspace.id
output applicationInsightsName string = applicationInsights.name
// Not a secret: with local authentication disabled the instrumentation key in it cannot
// be used to send telemetry without an Entra token.
output connectionString string = applicationInsights.properties.ConnectionString
