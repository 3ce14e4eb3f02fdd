"""The Enclose Function App: registers one blueprint per capability, nothing else."""

import azure.functions as func

from functions import attachments, delivery, dispatch, messages, portal, retention, scan

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint_module in (attachments, messages, portal, scan, dispatch, delivery, retention):
    app.register_functions(blueprint_module.bp)
