"""Command line: `schemas` registers and checks the Avro schemas,
`doctor` diagnoses the topics' replication.

`python -m cert_intake schemas register|check|check-released|release` is `python -m cert_intake.schemas`;
the Helm chart's hook Job runs `schemas register` before each install and upgrade.
"""

import argparse
import sys

from .observability.doctor import main as doctor_main
from .schemas import main as schemas_main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["schemas"]:
        # Everything after `schemas` is the schema tool's, its --help included.
        return schemas_main(argv[1:], prog="python -m cert_intake schemas")
    if argv[:1] == ["doctor"]:
        return doctor_main(argv[1:], prog="python -m cert_intake doctor")
    parser = argparse.ArgumentParser(prog="python -m cert_intake", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("schemas", help="register or check the Avro schemas (`schemas --help` for more)")
    commands.add_parser("doctor", help="diagnose the cluster (`doctor --help`)")
    parser.parse_args(argv)
    return 0  # only `schemas`, handled above, gets here


if __name__ == "__main__":
    sys.exit(main())
