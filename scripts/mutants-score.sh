#!/usr/bin/env bash
# Prints the mutation score of a cargo-mutants run from its outcomes.json:
#
#   scripts/mutants-score.sh [mutants.out]     (default: ./mutants.out)
#
# Viable mutants are those that built; a mutant is caught when a test failed
# (or hung past the timeout) with it. Ends with the line
# `mutation score: C of V viable mutants caught (P%)` and exits non-zero when
# any viable mutant was missed.
set -euo pipefail
out=${1:-mutants.out}
[ -f "$out/outcomes.json" ] || { echo "mutants-score: no $out/outcomes.json" >&2; exit 2; }
python3 - "$out/outcomes.json" <<'PY'
import json, sys

outcomes = json.load(open(sys.argv[1]))
caught = outcomes.get("caught", 0)
missed = outcomes.get("missed", 0)
timeout = outcomes.get("timeout", 0)
unviable = outcomes.get("unviable", 0)
viable = caught + missed + timeout
print(f"mutants: {outcomes.get('total_mutants', viable + unviable)} in all, "
      f"{unviable} unviable (did not build), {caught} caught, {timeout} timed out, {missed} missed")
score = 100.0 * (caught + timeout) / viable if viable else 100.0
print(f"mutation score: {caught + timeout} of {viable} viable mutants caught ({score:.1f}%)")
sys.exit(1 if missed else 0)
PY
