#!/usr/bin/env bash
# The pull-request gate of .github/workflows/ci.yml, run locally in the same order:
#
#   base-images  fmt  clippy  deny  hadolint  yamllint  workflow-schema  compose-schema
#   zizmor  gherkin  kubernetes  kubernetes-containers  test (unit + integration)  prometheus
#   e2e  e2e-ha  rollout  rollout-swarm  living-doc
#   mutants (only when asked for: cargo mutants on the lines changed since the base branch)
#
# A failed stage does not stop the run (unless --fail-fast): every stage reports,
# the summary lists them all, and the exit status is non-zero if any failed. The
# last lines give the scenario totals per level and, last of all, `N passed, M failed`
# over every level that ran.
#
# Tools: the Python linters (.github/requirements-lint.txt) go into a virtualenv in
# target/gate-venv; cargo-deny is installed with `cargo install --locked` at the
# version CI uses when it is missing. cargo-deny reads the advisory database from
# ../shared/advisory-db when that directory exists (offline), else fetches it. make
# and gcc (jemalloc's build needs them), and chromium (the living documentation is
# opened in it), are installed with apt-get when missing and the gate runs as root.
# promtool, when not on the PATH, is taken from Debian's prometheus package
# (downloaded with apt-get, unpacked into target/gate-tools; nothing is installed or
# started).
#
#   scripts/gate.sh                    every stage but mutants
#   scripts/gate.sh --skip-e2e         all but the e2e stages (also GATE_SKIP_E2E=1)
#   scripts/gate.sh --skip STAGE ...   leave out stages by name (also GATE_SKIP="e2e deny")
#   scripts/gate.sh --fail-fast        stop at the first failed stage
#   scripts/gate.sh --mutants          also the mutants stage (also GATE_MUTANTS=1; base branch
#                                      GATE_MUTANTS_BASE, default main)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

usage() { sed -n '2,29s/^# \{0,1\}//p' "$0"; }

STAGES=(base-images fmt clippy deny hadolint yamllint workflow-schema compose-schema
        zizmor gherkin kubernetes kubernetes-containers test prometheus e2e e2e-ha rollout
        rollout-swarm living-doc
        mutants)
skip=" ${GATE_SKIP:-} "
[ -n "${GATE_SKIP_E2E:-}" ] && [ "${GATE_SKIP_E2E}" != 0 ] && skip+=" e2e e2e-ha "
fail_fast=false
# Mutation testing rebuilds and tests once per mutant: minutes, so only when asked for.
mutants=false
[ -n "${GATE_MUTANTS:-}" ] && [ "${GATE_MUTANTS}" != 0 ] && mutants=true
while [ $# -gt 0 ]; do
    case "$1" in
        --skip-e2e) skip+=" e2e e2e-ha " ;;
        --skip)
            [ $# -ge 2 ] || { echo "gate: --skip needs a stage name" >&2; exit 2; }
            skip+=" $2 "
            shift
            ;;
        --fail-fast) fail_fast=true ;;
        --mutants) mutants=true ;;
        -h | --help) usage; exit 0 ;;
        *) echo "gate: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for name in $skip; do
    [[ " ${STAGES[*]} " == *" $name "* ]] || { echo "gate: no stage named $name" >&2; exit 2; }
done

LOGS=target/gate
VENV=target/gate-venv
TOOLS=target/gate-tools
SHARED_ADVISORY_DB=../shared/advisory-db
mkdir -p "$LOGS"
# The cargo-deny version CI installs: one place to change it.
DENY_VERSION=$(sed -n 's/^  CARGO_DENY_VERSION: *//p' .github/workflows/ci.yml)
DENY_VERSION=${DENY_VERSION:-0.20.2}
MUTANTS_VERSION=$(sed -n 's/^  CARGO_MUTANTS_VERSION: *//p' .github/workflows/ci.yml)
MUTANTS_VERSION=${MUTANTS_VERSION:-27.1.0}

declare -A result seconds note
stopped=false

# stage NAME COMMAND...: runs one stage, records its result and duration.
stage() {
    local name=$1
    shift
    if [[ "$skip" == *" $name "* ]]; then
        result[$name]=skipped note[$name]="asked to skip"
        return 0
    fi
    if $stopped; then
        result[$name]=skipped note[$name]="--fail-fast after a failure"
        return 0
    fi
    printf '\n\033[1m=== gate: %s ===\033[0m\n' "$name"
    local started=$SECONDS status
    # The stage's output is also kept, for the summary's reasons. The braces make this
    # shell (not a pipeline's subshell, nor the forked command) open the redirection:
    # what a stage function sets stays set, and $! is tee, waited for.
    { "$@"; } > >(tee "$LOGS/stage-$name.log") 2>&1
    status=$?
    wait $!
    if [ "$status" -eq 0 ]; then
        result[$name]=passed
    else
        result[$name]=failed
        $fail_fast && stopped=true
    fi
    seconds[$name]=$((SECONDS - started))
}

# not_run NAME WHY: a stage that cannot run because something it needs failed.
not_run() {
    [[ "$skip" == *" $1 "* ]] && { result[$1]=skipped note[$1]="asked to skip"; return; }
    result[$1]=skipped note[$1]=$2
}

# --- Tools -------------------------------------------------------------------

# apt_install (installs Debian packages when the gate runs as root) and the other
# shared functions.
LIB_PROG=gate
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# The Python linters, pinned in .github/requirements-lint.txt, in target/gate-venv.
python_tools() {
    local requirements=.github/requirements-lint.txt stamp="$VENV/.requirements"
    if [ -x "$VENV/bin/python" ] && cmp -s "$requirements" "$stamp"; then
        return 0
    fi
    echo "gate: installing the Python linters into $VENV"
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian's python3 ships venv without ensurepip; python3-venv adds it.
        apt_install "python3 cannot create a virtualenv" python3-venv || return 1
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV" &&
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements" &&
        cp "$requirements" "$stamp"
}

# make and a C compiler: jemalloc, the service's allocator, is built from its C sources.
build_tools() {
    command -v make >/dev/null && command -v cc >/dev/null && return 0
    apt_install "building the service needs make and a C compiler" make gcc
}

# cargo-deny at the version CI uses.
cargo_deny_tool() {
    if [ "$(cargo deny --version 2>/dev/null)" = "cargo-deny $DENY_VERSION" ]; then
        return 0
    fi
    echo "gate: installing cargo-deny $DENY_VERSION"
    cargo install --locked --quiet cargo-deny --version "$DENY_VERSION"
}

# cargo-mutants at the version CI uses.
cargo_mutants_tool() {
    if [ "$(cargo mutants --version 2>/dev/null)" = "cargo-mutants $MUTANTS_VERSION" ]; then
        return 0
    fi
    echo "gate: installing cargo-mutants $MUTANTS_VERSION"
    cargo install --locked --quiet cargo-mutants --version "$MUTANTS_VERSION"
}

# promtool from Debian's prometheus package (bookworm: 2.42, as the monitoring
# profile's Prometheus): only the binary, unpacked from the package into $TOOLS.
PROMTOOL=promtool
promtool_tool() {
    command -v promtool >/dev/null && return 0
    PROMTOOL=$TOOLS/promtool
    [ -x "$PROMTOOL" ] && return 0
    echo "gate: unpacking promtool from Debian's prometheus package into $TOOLS"
    local work
    work=$(mktemp -d) || return 1
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq || { rm -rf "$work"; return 1; }
        chmod 0777 "$work" # apt's download user writes there
    fi
    if (cd "$work" && apt-get download -qq prometheus) &&
        dpkg-deb -x "$work"/prometheus_*.deb "$work/x" &&
        mkdir -p "$TOOLS" && cp "$work/x/usr/bin/promtool" "$PROMTOOL"; then
        rm -rf "$work"
        return 0
    fi
    rm -rf "$work"
    echo "gate: promtool is missing: install Debian's prometheus package" >&2
    return 1
}

# --- Stages ------------------------------------------------------------------

# As CI's `cargo deny --locked check`, without the inclusion graphs (`cargo deny check` shows them).
deny() {
    cargo deny --version
    # cargo-deny reads `cargo metadata` for every platform, offline: the crates only
    # other platforms use (wasm, Android, Windows) must be in the registry cache too,
    # and a build never puts them there.
    cargo fetch --locked --quiet || return 1
    if [ -d "$SHARED_ADVISORY_DB" ] && [ -z "${GATE_DENY_FETCH:-}" ]; then
        offline_advisory_db && cargo deny --offline --locked check --hide-inclusion-graph
    else
        cargo deny --locked check --hide-inclusion-graph
    fi
}

# cargo-deny opens its database as a git checkout under deny.toml's db-path, in a
# directory named after the database's URL; ../shared/advisory-db is a plain copy.
# So: copy it there and commit it, dated as the snapshot is (from its README).
offline_advisory_db() {
    local dir
    dir=$(cargo deny -L debug --offline check advisories 2>&1 |
        sed -n "s/.*Opening advisory database at '\(.*\)'.*/\1/p" | head -n 1)
    dir=${dir:-target/advisory-dbs/advisory-db-3157b0e258782691}
    local readme=${SHARED_ADVISORY_DB}.README.md snapshot="" commit=""
    if [ -f "$readme" ]; then
        # "… commit <40 hex>, <YYYY-MM-DD> …"
        local stamp
        stamp=$(grep -oE '[0-9a-f]{40}, [0-9]{4}-[0-9]{2}-[0-9]{2}' "$readme" | head -n 1)
        commit=${stamp%%,*} snapshot=${stamp##*, }
    fi
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    cp -R "$SHARED_ADVISORY_DB" "$dir" && chmod -R u+w "$dir" || return 1
    local date=${snapshot:+${snapshot}T00:00:00Z}
    date=${date:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
    (
        cd "$dir" &&
            git init --quiet --initial-branch=main &&
            git add --all &&
            GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date \
                git -c user.name=gate -c user.email=gate@localhost -c commit.gpgsign=false \
                commit --quiet --message "copy of ../shared/advisory-db ${commit:-}"
    ) || return 1
    if [ -n "$snapshot" ]; then
        local age=$(( ($(date -u +%s) - $(date -u -d "$snapshot" +%s)) / 86400 ))
        echo "gate: advisory database: offline copy of ${commit:0:12} from $snapshot ($age days old)"
        if [ "$age" -gt 90 ]; then
            echo "gate: warning: that is older than cargo-deny's 90-day staleness limit; advisories" \
                "published since are not checked (CI fetches the live database)"
        fi
    else
        echo "gate: advisory database: offline copy of $SHARED_ADVISORY_DB (snapshot date unknown)"
    fi
}

gherkin() {
    "$VENV/bin/reformat-gherkin" --version
    if "$VENV/bin/reformat-gherkin" --check features/; then
        return 0
    fi
    # Show what the formatter would change, without touching features/.
    local copy="$LOGS/features-formatted"
    rm -rf "$copy" && cp -R features "$copy"
    "$VENV/bin/reformat-gherkin" "$copy" >/dev/null 2>&1
    diff -ru features "$copy"
    echo "gate: features/ is not formatted: run $VENV/bin/reformat-gherkin features/" >&2
    return 1
}

unit_and_integration() {
    cargo test 2>&1 | tee "$LOGS/test.log"
    local status=${PIPESTATUS[0]}
    # As on CI: without Docker the runner skips the integration level and still passes.
    if ! grep -Eq '^integration: [0-9]+ passed, [0-9]+ failed$' "$LOGS/test.log"; then
        echo "gate: the integration level did not run" >&2
        return 1
    fi
    return "$status"
}

# The monitoring profile's configuration, its rules and their unit tests, and a real
# /metrics body (kept by the integration level) in the exposition format.
prometheus() {
    local body=target/bdd/integration/metrics.prom
    promtool_tool || return 1
    "$PROMTOOL" --version | head -n 1
    "$PROMTOOL" check config deploy/prometheus/prometheus.yml &&
        "$PROMTOOL" check rules deploy/prometheus/rules.yml &&
        "$PROMTOOL" test rules deploy/prometheus/rules_test.yml || return 1
    if [ ! -s "$body" ]; then
        echo "gate: no /metrics body at $body: the integration level did not scrape one" >&2
        return 1
    fi
    echo "Checking $body"
    # promtool prints lint problems and exits non-zero on any.
    "$PROMTOOL" check metrics <"$body" && echo "  SUCCESS: $(grep -vc '^#' "$body") samples"
}

e2e() {
    scripts/e2e.sh 2>&1 | tee "$LOGS/e2e.log"
    return "${PIPESTATUS[0]}"
}

# The failover scenarios in the ha stack (primary, replicas, sentinels), with the
# images the e2e stage built.
e2e_ha() {
    scripts/e2e.sh --ha 2>&1 | tee "$LOGS/e2e-ha.log"
    return "${PIPESTATUS[0]}"
}

# As CI's pull-request job: every mutant in the lines of src/ changed since the
# merge base with GATE_MUTANTS_BASE (default main) must be caught.
mutants_in_diff() {
    local base=${GATE_MUTANTS_BASE:-main} diff=$LOGS/mutants.diff
    cargo_mutants_tool || return 1
    cargo mutants --version
    rm -rf "$LOGS/mutants.out"
    git diff "$(git merge-base "$base" HEAD)" -- src/ >"$diff" || return 1
    if [ ! -s "$diff" ]; then
        echo "gate: no change in src/ since $base: no mutants to test"
        return 0
    fi
    # In place: a copy of the tree would rebuild every dependency. cargo-mutants puts
    # each file back after its mutant (also on Ctrl-C); the stage runs last.
    nice cargo mutants --in-place --in-diff "$diff" --output "$LOGS" || return 1
    # No outcomes when the changed lines hold no code to mutate (tests, comments).
    [ ! -f "$LOGS/mutants.out/outcomes.json" ] || scripts/mutants-score.sh "$LOGS/mutants.out"
}

# Blue-green deploy and a SIGKILL under load through the load balancer, with the
# images the e2e stage built.
rollout() {
    scripts/rollout.sh --engine compose 2>&1 | tee "$LOGS/rollout.log"
    return "${PIPESTATUS[0]}"
}

# Scaling, a rolling update, an automatic rollback and a SIGKILL on a single-node
# swarm (initialised for the run and left again when the engine is in none), under
# load through the load balancer, with the images the e2e stage built.
rollout_swarm() {
    scripts/rollout.sh --engine swarm 2>&1 | tee "$LOGS/rollout-swarm.log"
    return "${PIPESTATUS[0]}"
}

# The page, rendered from every level's reports, then opened in headless
# Chromium (Debian's package, installed as root when missing): it must show every
# feature and run its script without error; target/bdd/report.png is kept.
living_doc() {
    cargo test --locked --test bdd -- --report-only &&
        test -s target/bdd/report.html || return 1
    if ! command -v chromium >/dev/null; then
        apt_install "the living documentation is checked in a browser" chromium || return 1
    fi
    scripts/living-doc-browser.sh target/bdd/report.html
}

# --- The run -----------------------------------------------------------------

rm -f "$LOGS/test.log" "$LOGS/e2e.log" "$LOGS/e2e-ha.log" target/bdd/integration/metrics.prom

stage base-images scripts/build-base-images.sh
stage fmt cargo fmt --check
# Without them, clippy and the tests fail and say why.
if ! $stopped && [[ "$skip" != *" clippy "* || "$skip" != *" test "* ]]; then
    build_tools || true
fi
stage clippy cargo clippy --all-targets --locked -- -D warnings

if [[ "$skip" == *" deny "* ]] || cargo_deny_tool; then
    stage deny deny
else
    result[deny]=failed note[deny]="cargo-deny $DENY_VERSION could not be installed"
    $fail_fast && stopped=true
fi

python_stages=(hadolint yamllint workflow-schema compose-schema zizmor gherkin kubernetes)
wanted=false
for name in "${python_stages[@]}"; do
    [[ "$skip" == *" $name "* ]] || wanted=true
done
if $wanted && ! $stopped && ! python_tools; then
    for name in "${python_stages[@]}"; do
        [[ "$skip" == *" $name "* ]] && { result[$name]=skipped note[$name]="asked to skip"; continue; }
        result[$name]=failed note[$name]="the Python linters could not be installed"
    done
    $fail_fast && stopped=true
else
    stage hadolint "$VENV/bin/hadolint" Dockerfile
    stage yamllint "$VENV/bin/yamllint" --strict .github docker-compose.yml .yamllint.yml deploy
    stage workflow-schema "$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows \
        .github/workflows/ci.yml
    stage compose-schema "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec \
        docker-compose.yml deploy/compose.ha.yml deploy/swarm/stack*.yml
    # Offline here: CI runs the online audits too (with its token).
    stage zizmor "$VENV/bin/zizmor" --offline .github/workflows/
    stage gherkin gherkin
    # Rendered and validated offline: no cluster is contacted.
    stage kubernetes env PATH="$VENV/bin:$PATH" scripts/check-kubernetes.sh
fi
# The rendered Redis pods run in Docker as their templates say (the venv's kubectl
# and PyYAML read the renders the kubernetes stage left in target/).
if [ "${result[base-images]}" = failed ]; then
    not_run kubernetes-containers "the base images are missing"
else
    stage kubernetes-containers env PATH="$VENV/bin:$PATH" scripts/check-kubernetes-containers.sh
fi

stage test unit_and_integration
stage prometheus prometheus

if [ "${result[base-images]}" = failed ]; then
    not_run e2e "the base images are missing"
else
    stage e2e e2e
fi
if [ "${result[base-images]}" = failed ]; then
    not_run e2e-ha "the base images are missing"
else
    stage e2e-ha e2e_ha
fi
if [ "${result[base-images]}" = failed ]; then
    not_run rollout "the base images are missing"
else
    stage rollout rollout
fi
if [ "${result[base-images]}" = failed ]; then
    not_run rollout-swarm "the base images are missing"
else
    stage rollout-swarm rollout_swarm
fi

# Also after failures, as on CI: the page shows which scenarios failed where.
stage living-doc living_doc

if $mutants; then
    stage mutants mutants_in_diff
else
    result[mutants]=skipped note[mutants]="only with --mutants or GATE_MUTANTS=1"
fi

# --- Summary -----------------------------------------------------------------

# Scenario counts of one level: "P F" from the runner's `level: P passed, F failed`
# line, or e2e.sh's closing line; empty when the level did not run.
counts() {
    local line
    case "$1" in
        unit | integration)
            [ -f "$LOGS/test.log" ] || return 0
            line=$(grep -E "^$1: [0-9]+ passed, [0-9]+ failed$" "$LOGS/test.log" | tail -n 1)
            line=${line#"$1: "}
            ;;
        e2e | e2e-ha)
            [ -f "$LOGS/$1.log" ] || return 0
            line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOGS/$1.log" | tail -n 1)
            ;;
    esac
    [ -n "$line" ] && sed -E 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/' <<<"$line"
}

printf '\n\033[1m=== gate: summary ===\033[0m\n'
printf '%-21s %-8s %8s\n' stage result seconds
failed_stages=0
for name in "${STAGES[@]}"; do
    r=${result[$name]:-skipped}
    [ "$r" = failed ] && failed_stages=$((failed_stages + 1))
    printf '%-21s %-8s %8s' "$name" "$r" "${seconds[$name]:--}"
    [ -n "${note[$name]:-}" ] && printf '  (%s)' "${note[$name]}"
    printf '\n'
done

# The end of a long log is what a reader sees first: each failed stage's own
# failure lines are repeated here, under the table.
for name in "${STAGES[@]}"; do
    [ "${result[$name]:-}" = failed ] || continue
    echo
    echo "why $name failed (whole output: $LOGS/stage-$name.log):"
    grep -E 'FAILED|[Ee]rror|panicked|failed' "$LOGS/stage-$name.log" 2>/dev/null |
        grep -vE '"status":|\b0 failed|test result: ok' | tail -n 12 | sed 's/^/  /'
done

echo
echo "scenarios:"
total_passed=0 total_failed=0
for level in unit integration e2e e2e-ha; do
    stage_name="test"
    [ "${level#e2e}" != "$level" ] && stage_name=$level
    read -r p f < <(counts "$level")
    if [ -n "${p:-}" ]; then
        printf '  %-12s %s passed, %s failed\n' "$level" "$p" "$f"
    elif [ "${result[$stage_name]:-skipped}" = failed ]; then
        # The stage failed before the level could count: that is one failure, not none.
        p=0 f=1
        printf '  %-12s no count (the %s stage failed): counted as 1 failed\n' "$level" "$stage_name"
    else
        p=0 f=0
        printf '  %-12s not run\n' "$level"
    fi
    total_passed=$((total_passed + p)) total_failed=$((total_failed + f))
    unset p f
done
[ "$failed_stages" -gt 0 ] && echo "gate: $failed_stages stage(s) failed"
echo "$total_passed passed, $total_failed failed"
[ "$failed_stages" -eq 0 ]
