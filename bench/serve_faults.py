#!/usr/bin/env python3
"""Load-and-fault probe of `embrec serve` (loopback only, bounded in time).

Starts the service on an export, then for --seconds runs at once: valid traffic (known users, histories, similar
items), malformed traffic (random bytes, broken JSON, huge or negative numbers, lying Content-Length, unknown
routes), slow clients (connections sending one byte every 2 s), admin reloads, and exports of a new version that are
killed at a random one of their renames (strace fault injection) or finish, each followed by a reload. A health
checker asks GET /healthz every 50 ms. It prints counts by status (the server's own, from /metrics, which also
count requests whose client closed before reading the answer: malformed requests are sent and the write side closed
at once), health-check latency percentiles, the server's RSS growth and how many
killed exports left a loadable export, and exits 1 on any 5xx, on a health check over 100 ms (--health-limit-ms) or
without an answer, or on a killed export that left none.

With --corpus DIR the malformed senders replay the files of DIR (e.g. the HTTP fuzz corpus, build-fuzz/corpus/http
after bench/fuzz.sh) beside the hand-written kinds, and wait at most --malformed-wait seconds for each answer (the
server keeps a half-closed connection with an incomplete request until its idle timeout; waiting for that would
send a few requests a second): a volume of fuzzed requests for the RSS figure.

Usage: bench/serve_faults.py RUN_FOLDER [--seconds 60] [--slow-clients 8] [--port 18123] [--binary build/embrec]
                             [--corpus DIR] [--malformed-wait 5]
RUN_FOLDER is a trained run (e.g. from `embrec demo --out runs/demo`); its export is written to RUN/export first.
"""
import argparse, collections, json, os, random, shutil, socket, struct, subprocess, sys, threading, time, urllib.request

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("run")
parser.add_argument("--seconds", type=float, default=60)
parser.add_argument("--slow-clients", type=int, default=8)
parser.add_argument("--port", type=int, default=18123)
parser.add_argument("--binary", default="build/embrec")
parser.add_argument("--health-limit-ms", type=float, default=100)
parser.add_argument("--corpus", default=None)
parser.add_argument("--malformed-wait", type=float, default=5.0)
args = parser.parse_args()
corpus = []
if args.corpus:
    corpus = [open(os.path.join(args.corpus, name), "rb").read() for name in sorted(os.listdir(args.corpus))]
    if not corpus:
        sys.exit(f"--corpus {args.corpus}: no files")

export = os.path.join(args.run, "export")
subprocess.run([args.binary, "export", args.run], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
token_file = export + ".admin-token"
server = subprocess.Popen([args.binary, "serve", export, "--port", str(args.port)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
deadline_start = time.time()
while True:
    try:
        socket.create_connection(("127.0.0.1", args.port), timeout=0.2).close()
        break
    except OSError:
        if server.poll() is not None or time.time() - deadline_start > 60:
            sys.exit("serve did not start: " + (server.stdout.read() if server.stdout else ""))
        time.sleep(0.1)
token = open(token_file).read().strip()
manifest = json.load(open(os.path.join(export, "manifest.json")))

def rss_kib():
    for line in open(f"/proc/{server.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0

statuses = collections.Counter()
lock = threading.Lock()
stop = threading.Event()
health_ms = []
kills = {"killed": 0, "completed": 0, "loadable_after": 0}

def count(key):
    with lock:
        statuses[key] += 1

def raw(request, half_close=False, timeout=5.0):
    """Sends raw bytes (then closes the write side when asked), returns the status codes answered ('none' when
    nothing came)."""
    try:
        with socket.create_connection(("127.0.0.1", args.port), timeout=timeout) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset: no TIME_WAIT pile-up
            s.sendall(request)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as error:
        return [f"error:{type(error).__name__}"]
    codes = [data[i + 9:i + 12].decode(errors="replace") for i in range(len(data)) if data.startswith(b"HTTP/1.1 ", i)]
    return codes or ["none"]

def http(method, path, body=None, headers=None):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    if data is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return raw(head.encode() + b"\r\n" + (data or b""))

def valid_traffic(seed):
    rng = random.Random(seed)
    users = [f"u{rng.randrange(100)}" for _ in range(50)]
    while not stop.is_set():
        kind = rng.randrange(3)
        if kind == 0:
            codes = http("GET", f"/v1/users/{rng.choice(users)}/recommendations?k={rng.randint(1, 50)}")
        elif kind == 1:
            codes = http("POST", "/v1/recommendations", {"history": [f"i{rng.randrange(50)}" for _ in range(5)], "k": 10})
        else:
            codes = http("POST", "/v1/items/similar", {"item": f"i{rng.randrange(50)}", "k": 5})
        for c in codes:
            count(c)

MALFORMED = [
    lambda r: bytes(r.randrange(256) for _ in range(r.randint(1, 300))),
    lambda r: b"POST /v1/recommendations HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"history\":",
    lambda r: b'POST /v1/items/similar HTTP/1.1\r\nContent-Length: 24\r\n\r\n{"item": "i1", "k": 1e999}',
    lambda r: b'POST /v1/recommendations HTTP/1.1\r\nContent-Length: 30\r\n\r\n{"history": [1], "k": -1e400}  ',
    lambda r: b"GET /v1/users/u1/recommendations?k=" + b"9" * 400 + b" HTTP/1.1\r\n\r\n",
    lambda r: b"POST /v1/recommendations HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
    lambda r: b"POST /v1/recommendations HTTP/1.1\r\nContent-Length: -1\r\n\r\n{}",
    lambda r: b"GET /nothing/here HTTP/1.1\r\n\r\n",
    lambda r: b"POST /admin/reload HTTP/1.1\r\nAuthorization: Bearer wrong\r\nContent-Length: 0\r\n\r\n",
    lambda r: b'POST /admin/reload HTTP/1.1\r\nAuthorization: Bearer ' + token.encode() +
              b'\r\nContent-Length: 17\r\n\r\n{"dir": "/etc"}  ',
]

def malformed_traffic(seed):
    rng = random.Random(seed)
    while not stop.is_set():
        request = rng.choice(corpus) if corpus and rng.random() < 0.9 else rng.choice(MALFORMED)(rng)
        raw(request, half_close=True, timeout=args.malformed_wait)
        count("malformed sent")

def slow_client():
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", args.port), timeout=30) as s:
                for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n":
                    if stop.is_set():
                        return
                    s.sendall(bytes([byte]))
                    stop.wait(2.0)
        except OSError:
            pass

def health():
    while not stop.is_set():
        started = time.perf_counter()
        codes = http("GET", "/healthz")
        health_ms.append((time.perf_counter() - started) * 1000 if codes == ["200"] else float("inf"))
        for c in codes:
            count("healthz " + c)
        stop.wait(0.05)

def reload():
    codes = http("POST", "/admin/reload", b"", {"Authorization": "Bearer " + token})
    for c in codes:
        count("reload " + c)

def exporter(seed):
    rng = random.Random(seed)
    have_strace = shutil.which("strace") is not None
    while not stop.is_set():
        command = [args.binary, "export", args.run]
        if have_strace and rng.random() < 0.7:
            n = rng.randint(1, 10)
            command = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename,renameat,renameat2", "-e",
                       f"inject=rename,renameat,renameat2:signal=KILL:when={n}"] + command
        result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with lock:
            kills["killed" if result.returncode != 0 else "completed"] += 1
        ok = os.path.exists(os.path.join(export, "manifest.json"))
        with lock:
            kills["loadable_after"] += ok
        reload()
        stop.wait(1.0)

rss_start = rss_kib()
threads = [threading.Thread(target=valid_traffic, args=(i,)) for i in range(4)]
threads += [threading.Thread(target=malformed_traffic, args=(100 + i,)) for i in range(2)]
threads += [threading.Thread(target=slow_client) for _ in range(args.slow_clients)]
threads += [threading.Thread(target=health), threading.Thread(target=exporter, args=(7,))]
for t in threads:
    t.daemon = True
    t.start()
time.sleep(args.seconds)
stop.set()
for t in threads:
    t.join(timeout=10)
rss_end = rss_kib()
server_counts = collections.Counter()
metrics = urllib.request.urlopen(f"http://127.0.0.1:{args.port}/metrics", timeout=10).read().decode()
for line in metrics.splitlines():
    if line.startswith("embrec_http_requests_total{"):
        status = line.split('status="')[1].split('"')[0]
        server_counts[status] += int(float(line.rsplit(" ", 1)[1]))
server.terminate()
try:
    server.wait(timeout=20)
except subprocess.TimeoutExpired:
    server.kill()

def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

five_xx = sum(n for status, n in server_counts.items() if status.startswith("5"))
exports = kills["killed"] + kills["completed"]
print(f"requests by status (server): {dict(sorted(server_counts.items()))}")
print(f"answers seen by the clients: {dict(sorted(statuses.items()))}")
print(f"5xx: {five_xx}")
print(f"health checks: {len(health_ms)}, p50 {pct(health_ms, 0.5):.1f} ms, p99 {pct(health_ms, 0.99):.1f} ms, "
      f"max {max(health_ms, default=float('nan')):.1f} ms (limit {args.health_limit_ms:.0f} ms, "
      f"{args.slow_clients} slow clients)")
print(f"exports: {exports} ({kills['killed']} killed), loadable after each: {kills['loadable_after']} of {exports}")
print(f"server RSS: {rss_start / 1024:.0f} MiB -> {rss_end / 1024:.0f} MiB")
failed = five_xx > 0 or pct(health_ms, 1.0) > args.health_limit_ms or kills["loadable_after"] != exports
print("FAILED" if failed else "passed")
sys.exit(1 if failed else 0)
