"""Accepts agent tasks over HTTP and publishes them on Kafka, authenticated by its client certificate."""
