"""What tests/docs/test_skill.py needs to know about the fanout pattern: the heading of its section in a project's
skill (its references/patterns.md), there only when it is chosen."""

SECTION = "## fanout\n"
