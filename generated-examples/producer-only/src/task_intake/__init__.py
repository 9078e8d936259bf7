"""Accepts agent tasks over HTTP and publishes them on Kafka."""
