"""The saga's chaos rows: its orchestrator killed -9 while sagas run (rows.py, scenario.py, judgement.py), and its
command topic among the hostile records rows' (hostile.py)."""
