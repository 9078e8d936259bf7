-- The outbox: each row is one event, Confluent-framed Avro in `payload`, exactly the bytes a direct publish sends.
-- A row is inserted and deleted in the transaction that writes it, so the table stays empty: Debezium reads the
-- insert from the write-ahead log, and the event router ignores the delete.
CREATE TABLE outbox (
    id uuid PRIMARY KEY,
    aggregatetype text NOT NULL,
    aggregateid text NOT NULL,
    type text NOT NULL,
    payload bytea NOT NULL,
    correlation_id text NOT NULL,
    causation_id text NOT NULL
);

-- The domain row of orders: the latest event per order_id, written with its outbox row.
CREATE TABLE orders (
    order_id text PRIMARY KEY,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    data jsonb NOT NULL
);
