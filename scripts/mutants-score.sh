#!/usr/bin/env bash
# Prints the mutation score of one or more cargo-mutants runs, from their outcomes.json:
#
#   scripts/mutants-score.sh [mutants.out ...]     (default: ./mutants.out)
#
# Several directories (runs over different files) are added up. Viable mutants are
# those that built; a mutant is caught when a test failed (or hung past the timeout)
# with it. Ends with the line `mutation score: C of V viable mutants caught (P%)` and
# exits non-zero when any viable mutant was missed.
set -euo pipefail
[ $# -gt 0 ] || set -- mutants.out
for out in "$@"; do
    [ -f "$out/outcomes.json" ] || { echo "mutants-score: no $out/outcomes.json" >&2; exit 2; }
done
python3 - "$@" <<'PY'
import json, sys

totals = {"total_mutants": 0, "caught": 0, "missed": 0, "timeout": 0, "unviable": 0}
for out in sys.argv[1:]:
    outcomes = json.load(open(f"{out}/outcomes.json"))
    for key in totals:
        totals[key] += outcomes.get(key, 0)
caught, missed, timeout = totals["caught"], totals["missed"], totals["timeout"]
viable = caught + missed + timeout
print(f"mutants: {totals['total_mutants']} in all, {totals['unviable']} unviable (did not build), "
      f"{caught} caught, {timeout} timed out, {missed} missed")
score = 100.0 * (caught + timeout) / viable if viable else 100.0
print(f"mutation score: {caught + timeout} of {viable} viable mutants caught ({score:.1f}%)")
sys.exit(1 if missed else 0)
PY
