"""Test support: start real components, build sample files."""
