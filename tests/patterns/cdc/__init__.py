"""Change data capture's tests, and what the shared tests need to know about it."""
