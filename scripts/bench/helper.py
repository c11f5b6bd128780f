#!/usr/bin/env python3
"""Helpers for scripts/bench.sh: free ports, readiness, cold start, RSS sampling, the report.

Every loop here is bounded in time, and every socket targets 127.0.0.1 only.
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import time

LOOPBACK = "127.0.0.1"


def free_ports(count, first=None):
    """Ports the kernel hands out as free, all distinct (held open until all are chosen);
    with BENCH_PORT_BASE set (or `first`), the ports from there on, checked to be free."""
    base = os.environ.get("BENCH_PORT_BASE") if first is None else first
    socks = []
    try:
        for i in range(count):
            s = socket.socket()
            socks.append(s)
            if base is not None:
                # A fixed port reused by consecutive starts may still be in TIME_WAIT,
                # which the service's own listener (SO_REUSEADDR) does not mind either.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((LOOPBACK, 0 if base is None else int(base) + i))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_get(port, path="/", timeout=1.0):
    """One GET over a fresh connection; returns (status, body) or raises OSError."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError("not an HTTP answer")
    return int(parts[1]), body


def wait_http(port, path, limit_s):
    """Polls until GET path answers 200; exit 1 after limit_s."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if http_get(port, path)[0] == 200:
                return 0
        except OSError:
            pass
        time.sleep(0.005)
    print(f"no 200 from 127.0.0.1:{port}{path} within {limit_s}s", file=sys.stderr)
    return 1


def cold_start(binary, redis_port, starts, extra_env):
    """Time from exec to the first 200 on GET /, polled tightly; one line per start."""
    env = dict(os.environ)
    env.update(extra_env)
    times = []
    base = os.environ.get("BENCH_PORT_BASE")
    for _ in range(starts):
        # After the three ports the services and Redis hold.
        (port,) = free_ports(1, None if base is None else int(base) + 3)
        argv = [
            binary,
            "--redis-url", f"redis://{LOOPBACK}:{redis_port}",
            "--bind", f"{LOOPBACK}:{port}",
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=env,
        )
        elapsed = None
        deadline = t0 + 5.0
        try:
            while time.perf_counter() < deadline:
                try:
                    status, _ = http_get(port, "/")
                    if status == 200:
                        elapsed = time.perf_counter() - t0
                        break
                except OSError:
                    pass
                if proc.poll() is not None:
                    break
                time.sleep(0.0001)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if elapsed is None:
            print("cold start: no 200 within 5 s", file=sys.stderr)
            return 1
        times.append(elapsed * 1000)
    print(" ".join(f"{t:.2f}" for t in times))
    return 0


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_sample(pid, limit_s, interval_ms, stop_file):
    """Samples VmRSS every interval_ms until stop_file exists or limit_s passes; prints the peak."""
    peak = 0
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        try:
            peak = max(peak, rss_kb(pid))
        except OSError:
            break
        time.sleep(interval_ms / 1000)
    print(peak)
    return 0


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec, unit=""):
    return "-" if v is None else format(v, spec) + unit


def summarize(results, meta_file):
    meta = {}
    with open(meta_file) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    rows = []
    with open(results) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))

    def num(r, k):
        v = r.get(k, "")
        return None if v in ("", "-", "nan") else float(v)

    subjects = meta["subjects"].split()  # e.g. "A H redis" or "A B H redis"
    services = [s for s in subjects if s not in ("H", "redis")]  # the GET / subjects
    concs = [int(c) for c in meta["concurrency"].split()]
    labels = {"redis": "redis-benchmark INCR", "H": "service A GET /health"}
    for s in services:
        labels[s] = f"service {s} GET /"

    print()
    print(f"page-tracker bench: {meta['rounds']} rounds x {meta['duration']}s per run, "
          f"subjects alternated each round; medians over rounds")
    print(f"  load: {meta['loadgen']}; redis: {meta['redis_version']}; "
          f"{meta['cores']} cores shared by load generator, service and Redis")
    for s in services:
        print(f"  service {s}: {meta['bin_' + s]}")
    print(f"  machine load average (1, 5, 15 min): {meta.get('loadavg', '?')} at the start, "
          f"{meta.get('loadavg_end', '?')} at the end")
    print()
    hdr = (f"{'subject':<22}{'c':>4}{'req|ops/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
           f"{'errors':>8}{'gap':>6}{'cpu svc':>9}{'cpu redis':>10}{'cpu load':>9}"
           f"{'svc us/req':>11}{'other':>7}{'cmd/visit':>10}  per-round req|ops/s")
    print(hdr)
    print("-" * len(hdr))
    medians = {}
    disturbed = []
    for c in concs:
        for s in subjects:
            rs = [r for r in rows if r["subject"] == s and int(r["c"]) == c]
            if not rs:
                continue
            rate = med([num(r, "rate") for r in rs])
            medians[(s, c)] = rate
            p50 = med([num(r, "p50_ms") for r in rs])
            p99 = med([num(r, "p99_ms") for r in rs])
            errs = [num(r, "errors") for r in rs]
            errors = "-" if all(e is None for e in errs) else str(int(sum(e or 0 for e in errs)))
            gaps = [r["gap"] for r in rs if r.get("gap") not in ("", "-")]
            gap = "-" if not gaps else str(int(med([float(g) for g in gaps])))
            cpu_svc = med([num(r, "cpu_svc") for r in rs])
            cpu_redis = med([num(r, "cpu_redis") for r in rs])
            cpu_load = med([num(r, "cpu_load") for r in rs])
            others = [num(r, "cpu_other") for r in rs]
            cpu_other = max(others) if others and None not in others else None
            if cpu_other is not None and cpu_other > 0.3:
                disturbed.append(f"{labels[s]} c={c}")
            us_req = (None if s == "redis" or not rate or cpu_svc is None
                      else cpu_svc / rate * 1e6)
            per_round = " ".join(f"{num(r, 'rate'):.0f}" for r in rs)
            # Redis commands that counted views, per view counted: 1 without batching.
            per_visit = med([num(r, "cmds_per_visit") for r in rs])
            print(f"{labels[s]:<22}{c:>4}{fmt(rate, '.0f'):>11}{fmt(p50, '.3f'):>9}"
                  f"{fmt(p99, '.3f'):>9}{errors:>8}{gap:>6}{fmt(cpu_svc, '.2f'):>9}"
                  f"{fmt(cpu_redis, '.2f'):>10}{fmt(cpu_load, '.2f'):>9}"
                  f"{fmt(us_req, '.1f'):>11}{fmt(cpu_other, '.2f'):>7}"
                  f"{fmt(per_visit, '.3f'):>10}  {per_round}")
        for s in services:
            for base, name in (("redis", "redis"), ("H", "health")):
                if medians.get((s, c)) and medians.get((base, c)):
                    print(f"{'  ratio ' + s + '/' + name:<22}{c:>4}"
                          f"{medians[(s, c)] / medians[(base, c)]:>11.2f}")
        print()
    print("cpu columns: cores busy during the run (utime+stime / wall); "
          "svc us/req = service CPU per request;")
    print("cmd/visit: Redis INCR/INCRBY commands per view counted (INFO commandstats);")
    print("other: the most CPU (cores) that anything but these processes used in one of the rounds,")
    print("       interrupt time included; about 0 on a quiet machine (small negative values are")
    print("       tick-accounting noise)")
    if disturbed:
        print("WARNING: other processes competed for the CPU during: " + ", ".join(disturbed)
              + "; those figures are low")
    print()

    # Counter check: the Redis counter must move by exactly the successful requests,
    # up to the requests still in flight when the load generator's deadline cut them.
    problems = 0
    print("counter check (GET page_views after - before, minus 2xx answers wrk counted):")
    for s in services:
        for c in concs:
            rs = [r for r in rows if r["subject"] == s and int(r["c"]) == c]
            gaps = [int(float(r["gap"])) for r in rs if r.get("gap") not in ("", "-")]
            bad = [g for g in gaps if g < 0 or g > c]
            problems += len(bad)
            print(f"  service {s} c={c:<3} gaps per round: {' '.join(map(str, gaps))}"
                  f"  -> {'OK' if not bad else 'UNEXPLAINED'}")
    print("  a gap of 0..c is expected: wrk stops at its deadline with up to c requests")
    print("  in flight; the service has already sent their INCRBY (counted in Redis) but")
    print("  wrk closes the sockets without counting the answers. A negative gap or one")
    print("  above c would mean lost or double counts.")
    print()

    for s in services:
        idle = int(meta.get(f"rss_idle_{s}", "0"))
        peak = int(meta.get(f"rss_peak_{s}", "0"))
        hwm = int(meta.get(f"rss_hwm_{s}", "0"))
        print(f"service {s} RSS: idle {idle / 1024:.1f} MB; peak sampled under c={max(concs)} load "
              f"{peak / 1024:.1f} MB (VmHWM over the whole run {hwm / 1024:.1f} MB)")
        cs = [float(x) for x in meta.get(f"cold_{s}", "").split()]
        if cs:
            print(f"service {s} cold start to first 200: median {statistics.median(cs):.2f} ms "
                  f"over {len(cs)} starts (min {min(cs):.2f}, max {max(cs):.2f}; "
                  f"from exec, first GET / included, Redis connection made lazily)")
    print()

    top = max(concs)
    if "A" in subjects and "B" in subjects:
        # Each round ran A and B back to back: the median of the per-round ratios
        # cancels most of the machine's drift between rounds.
        a = {r["round"]: num(r, "rate") for r in rows if r["subject"] == "A" and int(r["c"]) == top}
        b = {r["round"]: num(r, "rate") for r in rows if r["subject"] == "B" and int(r["c"]) == top}
        paired = [b[k] / a[k] for k in a if a[k] and b.get(k)]
        if paired:
            ratio = med(paired)
            print(f"B/A throughput at c={top}: {ratio:.3f} (per round: "
                  f"{' '.join(f'{p:.3f}' for p in paired)}); B costs {(1 - ratio) * 100:+.1f}% "
                  f"of A's throughput")
            print()
    print("targets:")
    for s in services:
        rate, rb = medians.get((s, top)), medians.get(("redis", top))
        ratio = rate / rb if rate and rb else None
        health = medians.get(("H", top))
        ceiling = rate / health if rate and health else None
        rs = [r for r in rows if r["subject"] == s and int(r["c"]) == top]
        p99 = med([num(r, "p99_ms") for r in rs])
        peak = int(meta.get(f"rss_peak_{s}", "0")) / 1024
        cs = [float(x) for x in meta.get(f"cold_{s}", "").split()]
        cold = statistics.median(cs) if cs else None

        def mark(ok):
            return "met" if ok else "NOT met"

        print(f"  service {s}: GET / ÷ GET /health at c={top} {fmt(ceiling, '.2f')} (>= 0.95: "
              f"{mark(ceiling is not None and ceiling >= 0.95)}); GET / ÷ redis-benchmark INCR "
              f"{fmt(ratio, '.2f')} (>= 1.00: "
              f"{mark(ratio is not None and ratio >= 1.0)}); p99 at c={top} {fmt(p99, '.3f')} ms "
              f"(<= 2 ms: {mark(p99 is not None and p99 <= 2)}); RSS under load {peak:.1f} MB "
              f"(<= 10 MB: {mark(0 < peak <= 10)}); cold start {fmt(cold, '.2f')} ms "
              f"(<= 20 ms: {mark(cold is not None and cold <= 20)})")
    if problems:
        print(f"COUNTER CHECK FAILED in {problems} run(s)")
    print()
    first = services[0]
    rate, rb = medians.get((first, top)), medians.get(("redis", top))
    health = medians.get(("H", top))
    ceiling = rate / health if rate and health else float("nan")
    ratio = rate / rb if rate and rb else float("nan")
    print(f"service/health throughput ratio at c={top}: {ceiling:.2f}")
    print(f"service/redis-incr throughput ratio at c={top}: {ratio:.2f}")
    return 1 if problems else 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "free-ports":
        print(" ".join(map(str, free_ports(int(args[0])))))
        return 0
    if cmd == "wait-http":
        return wait_http(int(args[0]), args[1], float(args[2]))
    if cmd == "cold-start":
        extra = dict(kv.split("=", 1) for kv in args[3:])
        return cold_start(args[0], int(args[1]), int(args[2]), extra)
    if cmd == "rss":
        print(rss_kb(int(args[0]), args[1] if len(args) > 1 else "VmRSS"))
        return 0
    if cmd == "rss-sample":
        return rss_sample(int(args[0]), float(args[1]), float(args[2]), args[3])
    if cmd == "summarize":
        return summarize(args[0], args[1])
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
