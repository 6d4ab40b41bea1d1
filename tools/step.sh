#!/bin/sh
# tools/step.sh NAME COMMAND...  : run COMMAND, then print "[step] NAME: X s (total Y s)" (Makefile's $(STEP)).
# tools/step.sh --total          : print the time since the make started (STEP_T0, set by the Makefile).
now() { date +%s.%N; }
if [ "$1" = "--total" ]; then
  awk -v a="${STEP_T0:-0}" -v b="$(now)" 'BEGIN { printf "[step] total: %.1f s\n", b - a }'
  exit 0
fi
name="$1"; shift
start=$(now)
"$@"
rc=$?
awk -v n="$name" -v a="$start" -v b="$(now)" -v t0="${STEP_T0:-0}" -v rc="$rc" \
  'BEGIN { printf "[step] %s: %.1f s (total %.1f s)%s\n", n, b - a, b - t0, (rc ? " FAILED" : "") }'
exit $rc
