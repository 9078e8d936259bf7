"""The Jinja extension copier.yml loads: the spec's filters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

from .model import derive
from .spec import Spec, pattern_problems, problems


class SpecExtension(Extension):
    """The filters `spec_problems` and `spec_model` for copier.yml."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["spec_problems"] = lambda spec: "\n".join(problems(spec))
        environment.filters["spec_model"] = self._model
        environment.filters["spec_consumes"] = self._consumes
        environment.filters["spec_queues"] = self._queues
        environment.filters["pattern_problems"] = lambda patterns, spec: "\n".join(pattern_problems(patterns, spec))

    @staticmethod
    def _consumes(spec: Any) -> bool:
        """Whether the service consumes a topic (an invalid spec counts as consuming: it is refused anyway)."""
        return bool(problems(spec)) or any(topic.consumed for topic in Spec.model_validate(spec).topics)

    @staticmethod
    def _queues(spec: Any) -> bool:
        """Whether a topic of the service is a queue (`delivery: queue`); false for an invalid spec."""
        return not problems(spec) and any(topic.delivery == "queue" for topic in Spec.model_validate(spec).topics)

    @staticmethod
    def _model(spec: Any, package_name: str, patterns: Sequence[str] = ()) -> str:
        """JSON (so YAML too) for a `type: yaml` question, in the model's own key order (`tojson` sorts keys)."""
        # Copier renders `model` only after `spec` passed its validator; an invalid spec here yields no model.
        return json.dumps(derive(Spec.model_validate(spec), package_name, patterns) if not problems(spec) else {})
