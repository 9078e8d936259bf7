"""The outbox's chaos rows: the data-pipelines service killed -9 while it takes POSTs, and PostgreSQL stopped under
it (rows.py, service.py)."""
