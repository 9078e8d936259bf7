"""The transactional outbox: POST on orders writes the domain row and the event in one
PostgreSQL transaction, and Debezium's outbox event router publishes the event from the write-ahead log. The event
reaches Kafka as a direct publish would send it: the same Avro bytes, key and headers."""
