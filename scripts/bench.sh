#!/usr/bin/env bash
# Throughput, latency, memory and cold start of page-tracker against its own Redis,
# measured beside two yardsticks: redis-benchmark's INCR on the same Redis, and the
# service's own GET /health (which never touches Redis) as the ceiling.
#
#   scripts/bench.sh                      full run: 3 rounds x 10 s at c = 1, 16, 64
#   scripts/bench.sh --quick              smoke run: 2 rounds x 2 s, 5 cold starts
#   scripts/bench.sh --rounds 5 --duration 20s
#   scripts/bench.sh --bin PATH           measure a prebuilt binary (no cargo build)
#   scripts/bench.sh --compare PATH       also measure a second binary B, alternated with A
#   scripts/bench.sh --env K=V --compare-env K=V   extra environment for A / B
#
# Options:
#   --rounds N          rounds per concurrency (default 3; each round runs every subject once)
#   --duration D        length of each load run, in seconds: 10 or 10s (default 10s)
#   --concurrency "L"   concurrencies, space separated (default "1 16 64"); the last one is the
#                       one the ratio, p99 and peak-RSS figures are taken at
#   --cold-starts N     starts for the cold-start median (default 7)
#   --wrk-threads N     wrk threads (default 1: on 2 cores a second one only steals CPU)
#   --bin PATH          service binary A instead of building this repository
#   --compare PATH      service binary B, run in the same rounds (order A B / B A alternates)
#   --env K=V           environment for service A (repeatable), e.g. TOKIO_WORKER_THREADS=1
#   --compare-env K=V   environment for service B (repeatable); --compare defaults to A's binary
#   --quiet-wait S      before each run, wait up to S seconds (default 120) for the machine to be
#                       quiet (other processes using < 0.3 cores); 0 skips the check. The
#                       "other" column shows the CPU that processes not of this benchmark used
#                       during each run: a high figure means the run was disturbed
#   --port-base N       loopback ports N (Redis), N+1, N+2 (services A, B), N+3 (cold starts)
#                       instead of ports the kernel picks
#   --keep              keep the work directory (logs, raw results) and print its path
#   --quick             --rounds 2 --duration 2s --cold-starts 5
#
# What it does: installs the tools it lacks from Debian (redis-server, redis-tools, wrk
# pinned to WRK_DEB_VERSION, python3; make and gcc, which jemalloc's build needs), builds
# the shipped binary (cargo build --profile dist --locked), starts its own redis-server (no
# persistence, foreground) and the service(s) on free loopback ports, and for each
# concurrency alternates, round after round:
#   A  wrk -c C -d D against GET /  (req/s of 2xx answers, p50, p99, errors),
#      with GET page_views read before and after to check the counter, and Redis'
#      INFO commandstats to count the INCR/INCRBY commands per visit;
#   H  the same against service A's GET /health: the HTTP ceiling, no Redis;
#   B  redis-benchmark -t incr -P 1 -c C (ops/s, p50, p99), sized to last about D.
# It samples the service's VmRSS during the runs at the highest concurrency, times cold
# starts from exec to the first 200 on GET /, prints a table of medians over rounds, and
# ends with the lines
#   service/health throughput ratio at c=64: X.XX
#   service/redis-incr throughput ratio at c=64: X.XX
# With a second service B it first prints the median of B/A's per-round throughput
# ratios and what B costs, e.g. metrics on (B) against off (A):
#   scripts/bench.sh --compare-env METRICS_BIND=127.0.0.1:0 --concurrency 64
# Every process it starts is stopped on exit, error or interrupt. Traffic goes to
# 127.0.0.1 only, and every load run is bounded in time (and wrapped in timeout).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE="$ROOT/scripts/bench"
WRK_DEB_VERSION="4.1.0-3+b2"

rounds=3
duration=10
concurrency="1 16 64"
cold_starts=7
wrk_threads=1
warmup=2
bin_a=""
bin_b=""
compare=0
keep=0
quiet_wait=120
env_a=()
env_b=()

die() { printf 'bench: %s\n' "$*" >&2; exit 2; }
log() { printf 'bench: %s\n' "$*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

seconds() {
    local v=${1%s}
    [[ $v =~ ^[0-9]+$ && $v -ge 1 && $v -le 600 ]] || die "--duration takes whole seconds (1..600), e.g. 10s: got '$1'"
    echo "$v"
}

while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=${2:?}; shift 2 ;;
        --duration) duration=$(seconds "${2:?}"); shift 2 ;;
        --concurrency) concurrency=${2:?}; shift 2 ;;
        --cold-starts) cold_starts=${2:?}; shift 2 ;;
        --wrk-threads) wrk_threads=${2:?}; shift 2 ;;
        --bin) bin_a=${2:?}; shift 2 ;;
        --compare) bin_b=${2:?}; compare=1; shift 2 ;;
        --env) env_a+=("${2:?}"); shift 2 ;;
        --compare-env) env_b+=("${2:?}"); compare=1; shift 2 ;;
        --keep) keep=1; shift ;;
        --port-base) export BENCH_PORT_BASE=${2:?}; shift 2 ;;
        --quiet-wait) quiet_wait=${2:?}; shift 2 ;;
        --quick) rounds=2; duration=2; cold_starts=5; warmup=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 ]] || die "--rounds takes a positive number"
[[ $cold_starts =~ ^[0-9]+$ && $cold_starts -ge 1 ]] || die "--cold-starts takes a positive number"
[[ $quiet_wait =~ ^[0-9]+$ ]] || die "--quiet-wait takes whole seconds"
[[ ${BENCH_PORT_BASE:-1024} =~ ^[0-9]+$ && ${BENCH_PORT_BASE:-1024} -ge 1024 && ${BENCH_PORT_BASE:-1024} -le 65532 ]] ||
    die "--port-base takes a port from 1024 to 65532"
for c in $concurrency; do
    [[ $c =~ ^[0-9]+$ && $c -ge 1 && $c -le 1000 ]] || die "bad concurrency '$c'"
done
top=$(tr ' ' '\n' <<<"$concurrency" | sort -n | tail -1)

# --- tools -----------------------------------------------------------------------------
need=()
for tool in redis-server:redis-server redis-cli:redis-tools redis-benchmark:redis-tools \
            wrk:wrk python3:python3 timeout:coreutils; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
# Building the service (not needed with --bin) compiles jemalloc from its C sources.
if [ -z "$bin_a" ]; then
    command -v make >/dev/null 2>&1 || need+=(make)
    command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
fi
if [ ${#need[@]} -gt 0 ]; then
    mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u | sed "s/^wrk\$/wrk=$WRK_DEB_VERSION/")
    log "installing ${need[*]}"
    [ "$(id -u)" = 0 ] || die "missing ${need[*]}: run as root or install them"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
wrk_version=$(dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo unknown)
[ "$wrk_version" = "$WRK_DEB_VERSION" ] ||
    log "warning: wrk $wrk_version, figures were calibrated with $WRK_DEB_VERSION"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
redis_version=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')

# --- build -----------------------------------------------------------------------------
if [ -z "$bin_a" ]; then
    log "cargo build --profile dist --locked"
    (cd "$ROOT" && cargo build --profile dist --locked --quiet --bin page-tracker)
    target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    case $target_dir in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac
    bin_a="$target_dir/dist/page-tracker"
fi
[ "$compare" = 1 ] && [ -z "$bin_b" ] && bin_b=$bin_a
for b in "$bin_a" ${bin_b:+"$bin_b"}; do
    [ -x "$b" ] || die "no executable at $b"
done

# --- processes, cleaned up whatever happens ---------------------------------------------
work=$(mktemp -d /tmp/page-tracker-bench.XXXXXX)
pids=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 20); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    if [ "$keep" = 1 ] || [ $status != 0 ]; then
        log "work directory kept: $work"
    else
        rm -rf "$work"
    fi
    exit $status
}
forget_pid() { # a reaped process is no longer ours to stop: its id may be reused
    local keep=() p
    for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    pids=("${keep[@]}")
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

read -r redis_port port_A port_B < <("$PY" "$HERE/helper.py" free-ports 3)

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --logfile '' >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
for _ in $(seq 50); do
    [ "$(rcli ping 2>/dev/null)" = PONG ] && break
    kill -0 "$redis_pid" 2>/dev/null || { cat "$work/redis.log" >&2; die "redis-server did not start"; }
    sleep 0.1
done
[ "$(rcli ping 2>/dev/null)" = PONG ] || die "redis-server does not answer on $redis_port"

subjects=(A)
[ "$compare" = 1 ] && subjects+=(B)
declare -A bin port pid envs
bin[A]=$bin_a; port[A]=$port_A; envs[A]="${env_a[*]:-}"
bin[B]=$bin_b; port[B]=$port_B; envs[B]="${env_b[*]:-}"

start_service() {
    local s=$1 e=()
    [ -n "${envs[$s]}" ] && read -r -a e <<<"${envs[$s]}"
    env ${e[@]+"${e[@]}"} "${bin[$s]}" --redis-url "redis://127.0.0.1:$redis_port" \
        --bind "127.0.0.1:${port[$s]}" >"$work/service-$s.log" 2>&1 &
    pid[$s]=$!
    pids+=("${pid[$s]}")
    "$PY" "$HERE/helper.py" wait-http "${port[$s]}" /health 10 ||
        { cat "$work/service-$s.log" >&2; die "service $s did not start"; }
    # The first visit opens the Redis connection; idle memory is measured after it.
    "$PY" "$HERE/helper.py" wait-http "${port[$s]}" / 5 || die "service $s does not count"
}
for s in "${subjects[@]}"; do start_service "$s"; done
sleep 1
declare -A rss_idle rss_peak
for s in "${subjects[@]}"; do
    rss_idle[$s]=$("$PY" "$HERE/helper.py" rss "${pid[$s]}")
    rss_peak[$s]=0
done

# --- measurements ----------------------------------------------------------------------
clk_tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Busy ticks of the whole machine (user nice system irq softirq steal), all CPUs.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
quiet_gate() {
    # Our own processes are idle between runs, so whatever is busy now is someone else.
    [ "$quiet_wait" = 0 ] && return 0
    local deadline=$((SECONDS + quiet_wait)) b0 b1 said=0
    while :; do
        b0=$(machine_ticks); sleep 0.5; b1=$(machine_ticks)
        # < 0.3 cores busy over 0.5 s
        [ $(( (b1 - b0) * 10 )) -lt $(( clk_tck * 3 / 2 )) ] && return 0
        if [ $SECONDS -ge $deadline ]; then
            log "warning: the machine is still busy after ${quiet_wait}s; measuring anyway"
            return 0
        fi
        [ $said = 0 ] && log "waiting for other processes to quieten (up to ${quiet_wait}s)"
        said=1
        sleep 1
    done
}
now_ns() { date +%s%N; }
counter() { local v; v=$(rcli get page_views); echo "${v:-0}"; }
settled_counter() {
    # The service finishes the requests wrk abandoned at its deadline; wait until the
    # counter stops moving (at most 2 s).
    local prev cur
    prev=$(counter)
    for _ in $(seq 40); do
        sleep 0.05
        cur=$(counter)
        [ "$cur" = "$prev" ] && break
        prev=$cur
    done
    echo "$prev"
}

results="$work/results.tsv"
printf 'subject\tc\tround\trate\tp50_ms\tp99_ms\terrors\tgap\tcpu_svc\tcpu_redis\tcpu_load\tcpu_other\tcmds_per_visit\n' >"$results"
counting_calls() { # INCR and INCRBY commands Redis has run since it started
    rcli info commandstats | tr -d '\r' |
        awk -F'[:,=]' '$1 == "cmdstat_incr" || $1 == "cmdstat_incrby" { n += $3 } END { print n + 0 }'
}
# Load generators run in the background and are waited for, so that an interrupt is
# handled at once (bash runs traps only between foreground commands) and cleanup can stop
# them. Their CPU time is the growth of the children times that `times` reports once
# they are reaped; `times` writes to a file, so no subshell adds to that figure.
children_cpu() { # file written by `times`: children user + system, in seconds
    awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, "m"); sub("s", "", t[2]); c += t[1] * 60 + t[2] } }
         END { printf "%.3f\n", c }' "$1"
}
run_bg() { # timeout-seconds output-file command...: runs it bounded in time, waits for it;
    # stdout goes to output-file, stderr to output-file.err, CPU seconds to output-file.cpu
    local limit=$1 out=$2 p
    shift 2
    times >"$work/times0"
    timeout -k 5 "$limit" "$@" >"$out" 2>"$out.err" &
    p=$!
    pids+=("$p")
    local status=0
    wait "$p" || status=$?
    times >"$work/times1"
    forget_pid "$p"
    [ $status = 0 ] || return $status
    awk -v a="$(children_cpu "$work/times0")" -v b="$(children_cpu "$work/times1")" \
        'BEGIN { printf "%.3f\n", b - a }' >"$out.cpu"
}
run=0

run_http() { # subject concurrency round [path]: subject H is service A's GET /health
    local s=$1 c=$2 r=$3 path=${4:-/} label=$1 before after t0 t1 s0 s1 r0 r1 m0 m1 sampler="" stop
    local calls0 calls1
    [ "$path" = /health ] && s=A
    run=$((run + 1))
    kill -0 "${pid[$s]}" 2>/dev/null || die "service $s has died (see $work/service-$s.log)"
    quiet_gate
    before=$(counter)
    calls0=$(counting_calls)
    s0=$(cpu_ticks "${pid[$s]}"); r0=$(cpu_ticks "$redis_pid"); m0=$(machine_ticks)
    stop="$work/stop.$run"
    if [ "$c" = "$top" ] && [ "$path" = / ]; then
        "$PY" "$HERE/helper.py" rss-sample "${pid[$s]}" $((duration + 10)) 20 "$stop" >"$work/rss.$run" &
        sampler=$!
        pids+=("$sampler")
    fi
    t0=$(now_ns)
    run_bg $((duration + 30)) "$work/wrk.$run" wrk -t "$(( wrk_threads < c ? wrk_threads : c ))" \
        -c "$c" -d "${duration}s" --timeout 2s -s "$HERE/wrk-report.lua" \
        "http://127.0.0.1:${port[$s]}$path" || { cat "$work/wrk.$run"* >&2; die "wrk failed"; }
    t1=$(now_ns)
    s1=$(cpu_ticks "${pid[$s]}"); r1=$(cpu_ticks "$redis_pid"); m1=$(machine_ticks)
    if [ -n "$sampler" ]; then
        touch "$stop"
        wait "$sampler" || true
        forget_pid "$sampler"
        local peak
        peak=$(cat "$work/rss.$run")
        [ "${peak:-0}" -gt "${rss_peak[$s]}" ] && rss_peak[$s]=$peak
    fi
    after=$(settled_counter)
    calls1=$(counting_calls)
    grep -q '^WRK_RESULT' "$work/wrk.$run" || { cat "$work/wrk.$run" >&2; die "no result from wrk"; }
    awk -v s="$label" -v c="$c" -v r="$r" -v counted=$((after - before)) -v path="$path" \
        -v calls=$((calls1 - calls0)) \
        -v wall="$(( t1 - t0 ))" -v ds=$((s1 - s0)) -v dr=$((r1 - r0)) -v dm=$((m1 - m0)) \
        -v tck="$clk_tck" -v load="$(cat "$work/wrk.$run.cpu")" '
        /^WRK_RESULT/ {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            ok = v["requests"] - v["status"]
            errors = v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"]
            secs = wall / 1e9
            ours = ds / tck / secs + dr / tck / secs + load / secs
            if (path == "/") {
                gap = counted - ok
                per_visit = counted > 0 ? sprintf("%.4f", calls / counted) : "-"
            } else {
                gap = "-"; per_visit = "-"
                if (counted != 0) printf "bench: GET %s changed the counter by %d\n", path, counted > "/dev/stderr"
            }
            printf "%s\t%d\t%d\t%.1f\t%.3f\t%.3f\t%d\t%s\t%.3f\t%.3f\t%.3f\t%.3f\t%s\n", s, c, r,
                ok / (v["duration_us"] / 1e6), v["p50_us"] / 1000, v["p99_us"] / 1000, errors,
                gap, ds / tck / secs, dr / tck / secs, load / secs,
                dm / tck / secs - ours, per_visit
        }' "$work/wrk.$run" >>"$results"
    tail -1 "$results" | awk -F'\t' '{printf "bench:   service %s%s c=%-3d round %d: %8.0f req/s  p50 %.3f ms  p99 %.3f ms  errors %d  gap %s  cmds/visit %s\n", $1, ($1 == "H" ? " (/health)" : ""), $2, $3, $4, $5, $6, $7, $8, $13}' >&2
}

declare -A rate_est
run_redis() { # concurrency round [calibrate]
    local c=$1 r=$2 n t0 t1 r0 r1 m0 m1 line
    run=$((run + 1))
    if [ "${3:-}" = calibrate ]; then
        n=$(( c == 1 ? 5000 : 40000 ))
    else
        n=$(awk -v e="${rate_est[$c]}" -v d="$duration" 'BEGIN { n = int(e * d); print (n < 1000 ? 1000 : n) }')
    fi
    quiet_gate
    r0=$(cpu_ticks "$redis_pid"); m0=$(machine_ticks)
    t0=$(now_ns)
    run_bg $((duration * 4 + 30)) "$work/rb.$run" redis-benchmark -h 127.0.0.1 -p "$redis_port" \
        -t incr -P 1 -c "$c" -n "$n" --csv || { cat "$work/rb.$run.err" >&2; die "redis-benchmark failed"; }
    t1=$(now_ns)
    r1=$(cpu_ticks "$redis_pid"); m1=$(machine_ticks)
    line=$(grep '^"INCR"' "$work/rb.$run" | tr -d '"') || die "no result from redis-benchmark"
    IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$line"
    rate_est[$c]=$rps
    [ "${3:-}" = calibrate ] && return 0
    awk -v c="$c" -v r="$r" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v wall=$((t1 - t0)) \
        -v dr=$((r1 - r0)) -v dm=$((m1 - m0)) -v tck="$clk_tck" -v load="$(cat "$work/rb.$run.cpu")" 'BEGIN {
        secs = wall / 1e9
        other = dm / tck / secs - dr / tck / secs - load / secs
        printf "redis\t%d\t%d\t%.1f\t%.3f\t%.3f\t-\t-\t-\t%.3f\t%.3f\t%.3f\t-\n", c, r, rps, p50, p99,
            dr / tck / secs, load / secs, other }' >>"$results"
    log "  redis-benchmark c=$(printf '%-3d' "$c") round $r: $(printf '%8.0f' "$rps") ops/s  p50 $p50 ms  p99 $p99 ms"
}

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
log "redis-server $redis_version on 127.0.0.1:$redis_port; service A on :$port_A${bin_b:+, B on :$port_B}"
log "warming up"
for s in "${subjects[@]}"; do
    timeout -k 5 $((warmup + 30)) wrk -t "$wrk_threads" -c "$top" -d "${warmup}s" \
        "http://127.0.0.1:${port[$s]}/" >/dev/null 2>&1 || die "wrk cannot load service $s"
done
for c in $concurrency; do
    run_redis "$c" 0 calibrate
    for r in $(seq "$rounds"); do
        order=("${subjects[@]}" H)
        if [ $((r % 2)) = 0 ]; then order=(H); [ "$compare" = 1 ] && order+=(B); order+=(A); fi
        for s in "${order[@]}"; do
            if [ "$s" = H ]; then run_http H "$c" "$r" /health; else run_http "$s" "$c" "$r"; fi
        done
        run_redis "$c" "$r"
    done
done

declare -A cold
for s in "${subjects[@]}"; do
    log "cold starts of service $s ($cold_starts)"
    e=()
    [ -n "${envs[$s]}" ] && read -r -a e <<<"${envs[$s]}"
    cold[$s]=$("$PY" "$HERE/helper.py" cold-start "${bin[$s]}" "$redis_port" "$cold_starts" ${e[@]+"${e[@]}"}) ||
        die "cold start of service $s failed"
done

{
    echo "rounds=$rounds"
    echo "duration=$duration"
    echo "concurrency=$concurrency"
    echo "subjects=${subjects[*]} H redis"
    echo "loadgen=wrk $wrk_version -t$wrk_threads, GET / over keep-alive connections"
    echo "redis_version=redis-server $redis_version, redis-benchmark -t incr -P 1"
    echo "cores=$(nproc)"
    echo "loadavg=$loadavg"
    echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
    for s in "${subjects[@]}"; do
        echo "bin_$s=${bin[$s]}${envs[$s]:+ (env ${envs[$s]})}"
        echo "rss_idle_$s=${rss_idle[$s]}"
        echo "rss_peak_$s=${rss_peak[$s]}"
        echo "rss_hwm_$s=$("$PY" "$HERE/helper.py" rss "${pid[$s]}" VmHWM)"
        echo "cold_$s=${cold[$s]}"
    done
} >"$work/meta"
"$PY" "$HERE/helper.py" summarize "$results" "$work/meta"
