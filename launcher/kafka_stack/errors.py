"""What the user sees: a StackError is a problem they can fix (printed without a traceback); progress goes to
stderr, so that stdout carries only settings."""

from __future__ import annotations

import sys


class StackError(Exception):
    """A problem the user can fix; printed without a traceback."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
