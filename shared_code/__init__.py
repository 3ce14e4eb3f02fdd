"""Enclose's domain and adapters. Never imports azure.functions (see design.md)."""
