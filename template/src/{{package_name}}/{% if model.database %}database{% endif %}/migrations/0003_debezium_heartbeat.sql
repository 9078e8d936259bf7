-- The one row every Debezium connector's heartbeat query updates (every 10 s): in each connector's publication, so
-- that a connector whose own tables are quiet still sees a change to confirm and its slot holds no old WAL.
CREATE TABLE debezium_heartbeat (
    id integer PRIMARY KEY,
    beat timestamptz NOT NULL
);
INSERT INTO debezium_heartbeat (id, beat) VALUES (1, now());
