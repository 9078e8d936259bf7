-- The table Debezium captures. REPLICA IDENTITY FULL: updates and deletes carry the whole old row in `before`.
CREATE TABLE customers (
    customer_id bigint PRIMARY KEY,
    name text NOT NULL,
    email text,
    vip boolean NOT NULL
);
ALTER TABLE customers REPLICA IDENTITY FULL;
