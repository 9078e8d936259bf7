"""What the service's layers cost, measured against the raw clients they wrap: `make bench`, or

    uv run python -m tests.bench [--events 20000] [--seconds 5] [--repetitions 3] [--json bench.json]

Programs that print figures; no test asserts a timing.
"""
