"""Trigger adapters: one blueprint per capability. Each parses its trigger, calls shared_code, shapes the answer."""
