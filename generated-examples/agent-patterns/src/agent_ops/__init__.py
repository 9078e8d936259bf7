"""Runs agent tasks, notifies their owners on several channels and keeps a tamper-evident audit log."""
