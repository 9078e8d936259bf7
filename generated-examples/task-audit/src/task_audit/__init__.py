"""Publishes and processes agent task events, and keeps a tamper-evident audit log of them."""
