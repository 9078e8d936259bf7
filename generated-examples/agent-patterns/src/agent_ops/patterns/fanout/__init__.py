"""Notification fan-out: every event on agent.tasks reaches each channel (email, sms, push)
through a consumer group of its own, with its own retries and dead-letter topic: a failing, slow or paused
channel never holds the others back.

`python -m agent_ops fanout CHANNEL...` runs channels until SIGTERM; each channel's code is in
`to_<channel>.py`.
"""
