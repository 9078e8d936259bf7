"""The fan-out's part of the chaos rows: its channels among the consumers the hostile records rows check
(hostile.py)."""
