#!/bin/sh
# Doctor's checks in the order that finds causes first: replication (can anything be written?), the group
# (is it stable?), then lag (is it keeping up?). Uses .stack.env when the local stack runs, else the environment.
# Exit status: the worst of the three (0 healthy, 1 a problem found, 2 the cluster cannot be read).
#
#     sh .claude/skills/kafka-events/scripts/triage.sh [window-seconds]
set -u
cd "$(dirname "$0")/../../../.." || exit 2
if [ -f .stack.env ]; then . ./.stack.env; fi
window="${1:-30}"
worst=0
for check in describe group lag; do
  uv run python -m order_pipelines doctor "$check" --window "$window"
  status=$?
  if [ "$status" -gt "$worst" ]; then worst=$status; fi
done
exit "$worst"
