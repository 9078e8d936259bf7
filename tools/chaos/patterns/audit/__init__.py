"""The audit's part of the chaos rows: its sealer's intake among the topics the hostile records rows write to
(hostile.py)."""
