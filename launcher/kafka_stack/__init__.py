"""The local stack launcher: Kafka, the schema registry, PostgreSQL and Kafka Connect on loopback, without Docker.

A package here, one file in every generated project: `python -m tools.launcher --write` bundles these modules into
`template/scripts/kafka_stack.py` (standard library imports merged at the top, then each module's body, a module
after the ones it imports from), and `--check` says when that copy is stale. So that the bundle is the same program,
a module imports another's names only as `from .module import name`, every top-level name is unique across the
package, and importing a module only defines things. `cli.py` holds what `--help` prints; `python -m
launcher.kafka_stack` runs it from here.
"""
