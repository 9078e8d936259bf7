"""Kafka clients with the service's delivery policy: producer, consumer runner, dead letters, admin, health."""
