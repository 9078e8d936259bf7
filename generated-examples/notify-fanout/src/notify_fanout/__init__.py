"""Fans notifications out to users over several channels."""
