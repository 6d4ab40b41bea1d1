#!/bin/sh
# tools/step.sh NAME COMMAND...  : run COMMAND, then print "[step] NAME: X s (CPU Y s) (total Z s)" (Makefile's
#                                  $(STEP)); CPU = user + system time of COMMAND and its children (`times`),
#                                  which a loaded machine inflates far less than the wall time.
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
# CPU seconds of this shell's finished children: the second line of `times` ("0m1.23s 0m0.04s"), read in
# this shell (a command substitution would run `times` in a subshell, which has no children).
tf=$(mktemp); times > "$tf"
cpu=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } print t }' "$tf")
rm -f "$tf"
awk -v n="$name" -v a="$start" -v b="$(now)" -v t0="${STEP_T0:-0}" -v rc="$rc" -v cpu="$cpu" \
  'BEGIN { printf "[step] %s: %.1f s (CPU %.1f s) (total %.1f s)%s\n", n, b - a, cpu, b - t0, (rc ? " FAILED" : "") }'
exit $rc
