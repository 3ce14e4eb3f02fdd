"""Telemetry to Azure Monitor through OpenTelemetry, in Azure only.

Nothing is loaded unless APPLICATIONINSIGHTS_CONNECTION_STRING is set, so local start-up
pays nothing. Our log lines carry ids only (never a number, date, name, text or token),
and the HTTP client instrumentations are off so no outgoing URL is recorded.
"""

from __future__ import annotations

import logging

from shared_code.settings import Settings

_configured = False


def configure_telemetry(settings: Settings) -> bool:
    """Send logs and traces to Application Insights when configured; True if it did."""
    global _configured
    if _configured or not settings.applicationinsights_connection_string:
        return _configured
    try:
        _configure(settings)
    except Exception:  # noqa: BLE001 - telemetry must never stop the app from starting
        logging.getLogger(__name__).warning("telemetry could not be configured; continuing without it")
        return False
    _configured = True
    return True


def _configure(settings: Settings) -> None:
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(
        connection_string=settings.applicationinsights_connection_string,
        # Application Insights has local (key) auth switched off: Entra ID only.
        credential=ManagedIdentityCredential(),
        logger_name="",
        instrumentation_options={
            "azure_sdk": {"enabled": True},
            "requests": {"enabled": False},
            "urllib": {"enabled": False},
            "urllib3": {"enabled": False},
        },
    )
