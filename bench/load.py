#!/usr/bin/env python3
"""Load harness: the example service (full kernel stack) against plain axum.

Builds both in release, runs each pinned to its own core with wrk pinned to the
other, and prints per route: req/s, p50, p99, peak RSS and the kernel/plain ratio
measured in the same run; then start-up time to a ready /readyz and idle RSS, and
the resident memory (and thread count) of both servers after each phase of the
sequence: start, login, 100 inserts, then each route's load.

Usage: python3 bench/load.py [--duration 10] [--connections 32] [--rounds 3]
       [--server-env NAME=VALUE ...]   (e.g. MALLOC_ARENA_MAX=2, for both servers)
       [--kernel-binary PATH]          (a widget_service built elsewhere, another commit's)
       [--no-build]                    (use the release binaries as they are)
Needs wrk (apt-get install wrk) and taskset.
"""
import argparse, http.client, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_CORE, LOAD_CORE = "0", "1"
SETTLE = 1.0  # seconds between the end of a phase and the memory reading: what stays, not a peak

ADMIN = ("bench@example.com", "bench-password-1")
WIDGET = '{"name":"widget","size":3}'
ROUTES = [
    # (name, method, path, body); widget routes carry the bench user's bearer token
    ("GET /healthz", "GET", "/healthz", None),
    ("GET /widgets (100)", "GET", "/api/v1/widgets", None),
    ("POST /widgets", "POST", "/api/v1/widgets", WIDGET),
]


def build(skip=False):
    if not skip:
        subprocess.run(["cargo", "build", "--release", "--example", "widget_service", "--example", "plain_axum"],
                       cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return {name: os.path.join(target, "release", "examples", name) for name in ("widget_service", "plain_axum")}


def http_status(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64).decode(errors="replace")
            return int(head.split(" ")[1])
    except (OSError, ValueError, IndexError):
        return None


def start(binary, port, workdir, admin=True, extra_env=()):
    db = os.path.join(workdir, f"{port}.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    # The rate limit stays on (its cost is measured) but never refuses the load.
    env = dict(os.environ, PORT=str(port), DATABASE_NAME=db, JWT_SECRET="bench-secret-bench-secret-bench-secret!",
               LOG_LEVEL="info", RATE_LIMIT_REQUESTS="1000000000")
    env.update(extra_env)
    if admin:  # creating the first admin costs one argon2 hash at start-up
        env.update(ADMIN_EMAIL=ADMIN[0], ADMIN_PASSWORD=ADMIN[1])
    t0 = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, binary], env=env, cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while http_status(port, "/readyz") != 200:
        if proc.poll() is not None or time.perf_counter() - t0 > 30:
            raise SystemExit(f"{binary} did not become ready")
        time.sleep(0.001)
    return proc, (time.perf_counter() - t0) * 1000


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory(pid):
    """(resident MiB, threads) of the process, read SETTLE seconds after a phase ends."""
    time.sleep(SETTLE)
    return rss_kib(pid, "VmRSS") / 1024, rss_kib(pid, "Threads")


def to_ms(value):
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n * 1000 if unit == "s" else n


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise SystemExit(f"{method} {path}: {response.status} {data[:200]!r}")
    return json.loads(data) if data else None


def login(port):
    body = json.dumps({"username": ADMIN[0], "password": ADMIN[1]})
    return request(port, "POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})["access_token"]


def seed(port, token):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    for _ in range(100):
        request(port, "POST", "/api/v1/widgets", WIDGET, headers)


def wrk(port, path, args, method="GET", body=None, token=None):
    cmd = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    if method != "GET":
        script = os.path.join(tempfile.gettempdir(), "kernel-bench-post.lua")
        with open(script, "w") as f:
            f.write(f'wrk.method = "{method}"\nwrk.body = {json.dumps(body)}\n'
                    'wrk.headers["Content-Type"] = "application/json"\n')
        cmd += ["-s", script]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{path}: {errors.group(1)} non-2xx responses")
    return rps, p50, p99


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs per route; medians are reported")
    ap.add_argument("--startups", type=int, default=7)
    ap.add_argument("--only", default="", help="measure only the routes whose name contains this text")
    ap.add_argument("--startup-only", action="store_true", help="measure start-up and idle RSS, no load")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable for both servers (allocator settings, say); repeatable")
    ap.add_argument("--kernel-binary", help="measure this widget_service binary instead of the one built here")
    ap.add_argument("--no-build", action="store_true", help="use the release binaries already built")
    args = ap.parse_args()
    extra_env = dict(kv.split("=", 1) for kv in args.server_env)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    bins = build(skip=args.no_build)
    if args.kernel_binary:
        bins["widget_service"] = os.path.abspath(args.kernel_binary)
    workdir = tempfile.mkdtemp(prefix="kernel-bench-")
    servers = {"kernel": (bins["widget_service"], 18000), "plain": (bins["plain_axum"], 18001)}

    startup = {k: [] for k in servers}
    idle_rss = {}
    for _ in range(args.startups):
        for name, (binary, port) in servers.items():
            proc, ms = start(binary, port, workdir, admin=False, extra_env=extra_env)
            startup[name].append(ms)
            time.sleep(0.2)
            idle_rss[name] = rss_kib(proc.pid, "VmRSS")
            proc.terminate(); proc.wait()

    if args.startup_only:
        for name in servers:
            print(f"{name:<8} start-up to ready /readyz: median {statistics.median(startup[name]):.1f} ms "
                  f"(min {min(startup[name]):.1f}); idle RSS {idle_rss[name] / 1024:.1f} MiB")
        return
    procs = {name: start(binary, port, workdir, extra_env=extra_env)[0] for name, (binary, port) in servers.items()}
    # Memory after each phase of the sequence (issue 17's bar: after all of it).
    phases = []

    def phase(label):
        phases.append((label, {name: memory(p.pid) for name, p in procs.items()}))

    results = {}
    try:
        phase("started")
        token = login(servers["kernel"][1])  # the plain server checks the same HS256 token
        phase("login (kernel only)")
        for _, port in servers.values():
            seed(port, token)
        phase("100 inserts")
        for route, method, path, body in (r for r in ROUTES if args.only in r[0]):
            samples = {k: [] for k in servers}
            for _ in range(args.rounds):
                for name, (_, port) in servers.items():
                    auth = token if path.startswith("/api/") else None
                    warm = argparse.Namespace(duration=2, connections=args.connections)
                    wrk(port, path, warm, method, body, auth)
                    samples[name].append(wrk(port, path, args, method, body, auth))
            results[route] = {k: tuple(statistics.median(s[i] for s in v) for i in range(3)) for k, v in samples.items()}
            phase(f"{route} load")
        peak = {name: rss_kib(p.pid, "VmHWM") for name, p in procs.items()}
    finally:
        for p in procs.values():
            p.terminate(); p.wait()

    print(f"\n{args.connections} connections, {args.duration}s x {args.rounds} rounds per route, "
          f"server on core {SERVER_CORE}, wrk on core {LOAD_CORE}; medians\n")
    print(f"{'route':<22}{'server':<8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}")
    for route, r in results.items():
        for name in servers:
            rps, p50, p99 = r[name]
            ratio = f"{rps / r['plain'][0]:.2f}" if name == "kernel" else ""
            print(f"{route:<22}{name:<8}{rps:>10.0f}{p50:>9.2f}{p99:>9.2f}{ratio:>8}")
    print()
    for name in servers:
        print(f"{name:<8} start-up to ready /readyz: median {statistics.median(startup[name]):.1f} ms "
              f"(min {min(startup[name]):.1f}); idle RSS {idle_rss[name] / 1024:.1f} MiB; "
              f"peak RSS under load {peak[name] / 1024:.1f} MiB")
    print(f"\nresident memory {SETTLE:.0f} s after each phase, MiB (threads); "
          f"each route's phase is {args.rounds} x (2 s warm-up + {args.duration} s)")
    print(f"{'after':<26}{'kernel':>14}{'plain':>14}{'ratio':>8}")
    for label, m in phases:
        (k, kt), (p, pt) = m["kernel"], m["plain"]
        print(f"{label:<26}{f'{k:.1f} ({kt})':>14}{f'{p:.1f} ({pt})':>14}{k / p:>8.2f}")
    print(json.dumps({"results": results, "phases_rss_mib_threads": dict(phases), "startup_ms": {k: statistics.median(v) for k, v in startup.items()},
                      "idle_rss_kib": idle_rss, "peak_rss_kib": peak}))


if __name__ == "__main__":
    main()
