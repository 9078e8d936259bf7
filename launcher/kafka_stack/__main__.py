"""`python -m launcher.kafka_stack up|down|...`: the command line, from the package rather than its bundle."""

import sys

from .cli import main

sys.exit(main())
