"""The Enclose Function App: registers one blueprint per capability (and telemetry, in Azure)."""

import azure.functions as func

from functions import (
    attachments,
    batches,
    callbacks,
    delivery,
    dispatch,
    health,
    messages,
    openapi,
    portal,
    retention,
    scan,
    template_rescan,
    templates,
)
from shared_code.settings import get_settings
from shared_code.telemetry import configure_telemetry

configure_telemetry(get_settings())
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint_module in (
    attachments,
    messages,
    batches,
    templates,
    health,
    openapi,
    portal,
    scan,
    dispatch,
    delivery,
    callbacks,
    retention,
    template_rescan,
):
    app.register_functions(blueprint_module.bp)
