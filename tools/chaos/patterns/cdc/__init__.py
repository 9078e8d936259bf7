"""The CDC's chaos row: a Debezium source while its Connect worker is killed -9 (rows.py, connector.py)."""
