"""The fan-out pattern's tests, and what the shared tests need to know about it."""
