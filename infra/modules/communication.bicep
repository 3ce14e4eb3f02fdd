// Azure Communication Services for SMS. Access keys are disabled: the app sends with its
// managed identity against the endpoint (ACS_ENDPOINT). Buying or registering a sender
// (alphanumeric sender ID or number) cannot be automated; see README.md, "Deploy to Azure".

@description('Communication Services resource name (globally unique).')
param name string

param tags object = {}

@description('Where ACS keeps data at rest.')
param dataLocation string = 'UK'

resource communication 'Microsoft.Communication/communicationServices@2025-05-01' = {
  name: name
  // Communication Services is a global resource; dataLocation decides where data rests.
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    disableLocalAuth: true
  }
}

output name string = communication.name
output id string = communication.id
output endpoint string = 'https://${communication.properties.hostName}'
