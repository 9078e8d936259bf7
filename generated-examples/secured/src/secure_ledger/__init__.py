"""Publishes and processes agent task lifecycle events on Apache Kafka."""
