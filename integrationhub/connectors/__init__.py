"""Connectors: one package per external system, discovered by entry points."""
