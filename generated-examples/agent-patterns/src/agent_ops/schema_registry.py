"""The evolution guard: keeps every change to schemas/ readable by the consumers already running.

    python -m PACKAGE schemas register        # set each subject's compatibility level, register every local schema
    python -m PACKAGE schemas check           # ask the registry: is every local schema compatible with its subject?
    python -m PACKAGE schemas check-released  # offline: compare schemas/ with schemas/released/ (the last release)
    python -m PACKAGE schemas release         # copy schemas/*.avsc into schemas/released/ when cutting a release

(`python -m PACKAGE.schemas ...` is the same.)

`register` is a deploy step (production turns SCHEMA_AUTO_REGISTER off; the Helm chart runs it in a hook Job);
`check` and `register` read SCHEMA_REGISTRY_URL, SCHEMA_SUBJECT_STRATEGY and SCHEMA_COMPATIBILITY like the service.
`check-released` needs no registry: it applies Apache Avro's own compatibility checker (the `avro` package) to each
schema and its released snapshot, so CI catches a breaking change before any registry sees it. Exit status 1 names
every broken subject.
"""

import argparse
import asyncio
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityResult, SchemaCompatibilityType
from avro.schema import parse
from confluent_kafka.schema_registry import (
    AsyncSchemaRegistryClient,
    ConfigCompatibilityLevel,
    Schema,
    SchemaRegistryError,
    ServerConfig,
)

from .events.avro import full_name, load_schema, schema_dir, subject_name
from .events.catalog import TOPICS
from .settings import Settings

_NOT_FOUND = 404


@dataclass(frozen=True)
class LocalSchema:
    subject: str
    file: str
    schema: dict[str, Any]


def local_schemas(settings: Settings, directory: Path | None = None) -> list[LocalSchema]:
    """Every event's schema with the subject it evolves under."""
    schemas: dict[str, LocalSchema] = {}
    for topic in TOPICS:
        for event_type in topic.event_types:
            subject = subject_name(settings.schema_subject_strategy, topic.name, full_name(event_type))
            schemas[subject] = LocalSchema(subject, f"{full_name(event_type)}.avsc", load_schema(event_type, directory))
    return list(schemas.values())


def breaks(new: dict[str, Any], old: dict[str, Any], level: str, old_label: str) -> list[str]:
    """What makes `new` incompatible with `old` under `level` (pairwise: transitive levels need every version)."""
    problems: list[str] = []
    if level.startswith(("BACKWARD", "FULL")):  # consumers on the new schema read events written with the old one
        problems += _explain(new, old, f"the new schema cannot read events written with {old_label}")
    if level.startswith(("FORWARD", "FULL")):  # consumers still on the old schema read events written with the new
        problems += _explain(old, new, f"consumers on {old_label} cannot read events written with the new schema")
    return problems


def _explain(reader: dict[str, Any], writer: dict[str, Any], consequence: str) -> list[str]:
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # its __init__ lacks "-> None"
    result: SchemaCompatibilityResult = checker.get_compatibility(parse(json.dumps(reader)), parse(json.dumps(writer)))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    # The checker reports sets; "/" (the record itself) accompanies every deeper location, so it names nothing.
    locations = sorted((location for location in result.locations if location != "/"), reverse=True) or ["/"]
    messages = sorted(result.messages)
    details = []
    for index, kind in enumerate(result.incompatibilities):
        message = messages[min(index, len(messages) - 1)] if messages else kind.value
        location = locations[min(index, len(locations) - 1)]
        field = _field_at(reader, location) or _field_at(writer, location)
        what = f"field `{field}`" if field else f"schema at {location}"
        if kind.value == "reader_field_missing_default_value":
            details.append(f"{what} was added without a default ({consequence})")
        else:
            details.append(f"{what}: {message} ({kind.value}; {consequence})")
    return details or [f"incompatible ({consequence})"]


def _field_at(schema: dict[str, Any], location: str) -> str | None:
    parts = location.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "fields" and parts[1].isdigit():
        fields = schema.get("fields", [])
        if int(parts[1]) < len(fields):
            return str(fields[int(parts[1])]["name"])
    return None


def check_released(settings: Settings, directory: Path, released: Path) -> list[str]:
    """Offline: every released schema must still be there, and its successor compatible under the project's level."""
    if not released.is_dir():
        return []
    current = {schema.file: schema for schema in local_schemas(settings, directory)}
    problems: list[str] = []
    for old_file in sorted(released.glob("*.avsc")):
        local = current.get(old_file.name)
        if local is None:
            if settings.schema_compatibility != "NONE":
                problems.append(f"{old_file.stem}: released schema removed; consumers of old events need it")
            continue
        old = json.loads(old_file.read_text())
        problems += [
            f"{local.subject}: {settings.schema_compatibility} broken: {detail}"
            for detail in breaks(local.schema, old, settings.schema_compatibility, "the released schema")
        ]
    return problems


async def check_registry(
    settings: Settings, registry: AsyncSchemaRegistryClient, directory: Path | None = None
) -> list[str]:
    """Ask the registry whether each local schema may become its subject's next version under the subject's level."""
    problems: list[str] = []
    for local in local_schemas(settings, directory):
        schema = Schema(json.dumps(local.schema), "AVRO")
        try:
            latest = await registry.get_latest_version(local.subject)
        except SchemaRegistryError as error:
            if error.http_status_code == _NOT_FOUND:
                continue  # a new subject: its first version is always accepted
            raise
        if await registry.test_compatibility(local.subject, schema, version="latest"):
            continue
        # The registry's verdict stands; Avro's checker names the field and the rule for the message.
        level = await subject_level(registry, local.subject, settings.schema_compatibility)
        old = json.loads(latest.schema.schema_str) if latest.schema and latest.schema.schema_str else {}
        details = breaks(local.schema, old, level, f"registered version {latest.version}") or [
            f"incompatible with an earlier registered version under {level}"
        ]
        problems += [f"{local.subject}: {level} broken: {detail}" for detail in details]
    return problems


async def subject_level(registry: AsyncSchemaRegistryClient, subject: str, default: str) -> str:
    try:
        config = await registry.get_config(subject)
    except SchemaRegistryError:
        return default
    level = config.compatibility_level or config.compatibility
    return level.value if level is not None else default


async def register(settings: Settings, registry: AsyncSchemaRegistryClient) -> list[str]:
    """Set each subject's compatibility level, then register its schema (a no-op when already registered)."""
    problems: list[str] = []
    level = ConfigCompatibilityLevel[settings.schema_compatibility]
    for local in local_schemas(settings):
        await registry.set_config(local.subject, ServerConfig(compatibility=level))
        try:
            schema_id = await registry.register_schema(local.subject, Schema(json.dumps(local.schema), "AVRO"))
        except SchemaRegistryError as error:
            problems.append(f"{local.subject}: refused by the registry: {error}")
            continue
        print(f"{local.subject}: schema id {schema_id} ({settings.schema_compatibility})")
    return problems


def release(directory: Path, released: Path) -> None:
    released.mkdir(parents=True, exist_ok=True)
    for old in released.glob("*.avsc"):
        old.unlink()
    for schema in sorted(directory.glob("*.avsc")):
        shutil.copy2(schema, released / schema.name)
        print(f"released {schema.name}")


async def _with_registry(command: str, settings: Settings) -> list[str]:
    async with AsyncSchemaRegistryClient({"url": settings.schema_registry_url}) as registry:
        return await (register(settings, registry) if command == "register" else check_registry(settings, registry))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["register", "check", "check-released", "release"])
    parser.add_argument("--schemas", type=Path, default=None, help="the schema folder (default: schemas/)")
    args = parser.parse_args(argv)
    settings = Settings()
    directory = args.schemas or schema_dir()
    released = directory / "released"
    if args.command == "release":
        release(directory, released)
        return 0
    if args.command == "check-released":
        problems = check_released(settings, directory, released)
        if not released.is_dir():
            print(f"no {released}: nothing released yet, nothing to compare")
    else:
        problems = asyncio.run(_with_registry(args.command, settings))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{args.command}: every schema is fine under {settings.schema_compatibility}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
