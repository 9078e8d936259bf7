"""Change data capture: Debezium captures the `customers` table, and the service consumes its changes from
`customers.changes` as typed change events, through the same consumer runner, delivery guarantee and dead-letter
topic as the spec's topics; `on_customers_change` in handlers.py handles them."""
