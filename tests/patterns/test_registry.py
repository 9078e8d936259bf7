"""The sub-packages of tests/patterns are the plug-ins the render knows, and each holds what the shared tests ask of
it: a pattern without its knowledge would be skipped by a shared test's loop, not fail it."""

from __future__ import annotations

from extensions.kafka_events_spec import derive, parse
from extensions.kafka_events_spec.patterns import ALL
from tests.patterns import NAMES, PATTERNS, knowledge
from tests.spec.samples import SPEC

# What each shared test asks of a concern's module.
CONCERNS = {
    "answers": ("section", "NEEDS_A_CONSUMED_TOPIC", "NO_TRACE_EXCEPT_IN", "REFUSALS", "CHART_PROCESSES_RUNS"),
    "manifests": ("topics", "acls", "consumed_topics", "components", "SECRET_SETTINGS"),
    "chart": ("readme_secrets", "start_work", "SERIES", "group_topic"),
    "skill": ("SECTION",),
}


def test_the_sub_packages_are_the_parts_a_render_of_every_pattern_has() -> None:
    sections = {name: module.section("things") for name, module in knowledge("answers", PATTERNS).items()}
    spec = parse({**SPEC, **{name: section for name, section in sections.items() if section is not None}})
    assert sorted(NAMES) == sorted(derive(spec, "things", list(PATTERNS))["parts"])


def test_every_pattern_says_what_the_shared_tests_ask_of_it() -> None:
    assert set(knowledge("answers", PATTERNS)) == set(PATTERNS)
    processes = {pattern.NAME for pattern in ALL if pattern.PROCESS}
    assert processes <= set(knowledge("manifests")), "a pattern with a process has Kubernetes objects"
    assert processes <= set(knowledge("chart")), "a pattern with a process is run by test_chart_processes.py"
    for concern, names in CONCERNS.items():
        for name, module in knowledge(concern).items():
            missing = [attribute for attribute in names if not hasattr(module, attribute)]
            if concern == "chart" and name not in PATTERNS:
                missing = [attribute for attribute in missing if attribute == "readme_secrets"]
            assert missing == [], f"tests/patterns/{name}/{concern}.py lacks {missing}"
