"""The fan-out's part of the shared tests: none. Its channels run in processes of their own, never inside the app's,
and its routes are the spec's (tests/integration/test_fanout.py tests the channels)."""

from tests.patterns.support import PatternSupport

SUPPORT = PatternSupport()
