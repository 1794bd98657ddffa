"""Hardening of `tessera serve` across processes, on loopback only, each step bounded in time:

1. one owner: a second server on the same data folder is refused at start, naming the first one's pid;
   `tessera index` into a collection the server holds is refused the same way, while `tessera query` reads it;
2. deleting a collection while upserts run: every answer is 200 or 404, no upsert is acknowledged after the
   delete, and nothing of the collection is left on disk;
3. timeouts: an idle keep-alive connection, half-sent headers, a half-sent body and a client dripping one byte at
   a time are all closed by the server; with stalled clients connected, SIGTERM still stops it with status 0.

Every process it starts is stopped before it exits. Exits non-zero on any failure."""

import argparse
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--tessera", required=True, help="the tessera binary")
parser.add_argument("--model", required=True, help="a model folder, for `tessera index`")
args = parser.parse_args()

started = []


def fail(message):
    print(f"hardening: FAILED: {message}", file=sys.stderr)
    stop_all()
    sys.exit(1)


def stop_all():
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def start_server(data, *extra):
    """Starts `tessera serve` on a free port; returns the process and the port."""
    process = subprocess.Popen(
        [args.tessera, "serve", "--data", data, "--port", "0", "--log-level", "error", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started.append(process)
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.startswith("listening on"):
                return process, int(line.strip().rsplit(":", 1)[1])
        if process.poll() is not None:
            break
    fail(f"the server did not start: {line!r} {process.stderr.read() if process.poll() is not None else ''}")


def request(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, body=data, headers={"content-type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, json.loads(payload) if payload else None


def run(*command, stdin=None):
    return subprocess.run([args.tessera, *command], input=stdin, capture_output=True, text=True, timeout=120)


root = tempfile.mkdtemp(prefix="tessera-hardening-")
try:
    data = os.path.join(root, "data")
    server, port = start_server(data)

    # 1. One owner per data folder and per collection.
    second = subprocess.Popen(
        [args.tessera, "serve", "--data", data, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    started.append(second)
    try:
        second.wait(timeout=30)
    except subprocess.TimeoutExpired:
        fail("a second server on the same data folder started")
    message = second.stderr.read()
    if second.returncode == 0 or f"in use by another process (pid {server.pid})" not in message:
        fail(f"second server: status {second.returncode}, {message!r}")
    print(f"hardening: a second server on the folder is refused: {message.strip().splitlines()[-1]}")

    status, _ = request(
        port,
        "PUT",
        "/collections/docs",
        {"vectors": {"dense": {"size": 3, "distance": "Cosine"}}},
    )
    if status != 200:
        fail(f"create: {status}")
    points = [{"id": i, "vector": {"dense": [1, i, 0]}, "payload": {"text": f"doc {i}"}} for i in range(1, 4)]
    status, _ = request(port, "PUT", "/collections/docs/points?wait=true", {"points": points})
    if status != 200:
        fail(f"upsert: {status}")
    jsonl = os.path.join(root, "docs.jsonl")
    with open(jsonl, "w") as file:
        file.write(json.dumps({"id": "a", "text": "a new document"}) + "\n")
    index = run("index", "docs", "--data", data, "--jsonl", jsonl, "--model", args.model)
    if index.returncode == 0 or f"in use by another process (pid {server.pid})" not in index.stderr:
        fail(f"tessera index into a served collection: status {index.returncode}, {index.stderr!r}")
    print("hardening: tessera index into the served collection is refused, naming the server's pid")
    query = run("query", "docs", "--data", data, "--body", "-", stdin=json.dumps({"query": [1, 0, 0], "limit": 10}))
    if query.returncode != 0 or len(json.loads(query.stdout)["points"]) != 3:
        fail(f"tessera query beside the server: {query.returncode} {query.stdout!r} {query.stderr!r}")
    status, reply = request(port, "POST", "/collections/docs/points/count", {})
    if status != 200 or reply["result"]["count"] != 3:
        fail(f"count after the refused index: {status} {reply}")
    print("hardening: tessera query reads the served collection; the server still counts 3 points")

    # 2. Delete under traffic.
    answers = []
    lock = threading.Lock()
    deleted_at = [None]

    def writer(first):
        for i in range(first, first + 2000):
            status, _ = request(port, "PUT", "/collections/docs/points?wait=true",
                                {"points": [{"id": i, "vector": {"dense": [1, 2, 3]}}]})
            with lock:
                answers.append((time.monotonic(), status))
            if status == 404:
                return

    threads = [threading.Thread(target=writer, args=(1000 * (n + 1),)) for n in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    request_started = time.monotonic()
    status, reply = request(port, "DELETE", "/collections/docs")
    deleted_at[0] = time.monotonic()
    if status != 200 or reply["result"] is not True:
        fail(f"delete: {status} {reply}")
    for thread in threads:
        thread.join(timeout=60)
    statuses = {status for _, status in answers}
    if not statuses <= {200, 404} or 200 not in statuses:
        fail(f"answers during the delete: {statuses}")
    late = [t for t, status in answers if status == 200 and t > deleted_at[0] + 0.05]
    if late:
        fail(f"{len(late)} upserts acknowledged after the delete was")
    left = [name for name in os.listdir(data) if not name.startswith(".tessera")]
    if left:
        fail(f"left behind after the delete: {left}")
    print(f"hardening: delete under {len(answers)} upserts: only 200 and 404, none acknowledged after, nothing left")
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)

    # 3. Timeouts and a shutdown that stalled clients cannot hold up.
    server, port = start_server(os.path.join(root, "data2"), "--idle-timeout", "1", "--request-timeout", "3")

    def closed_within(sock, seconds):
        """Whether the server closes the connection within `seconds` (reads until end of file)."""
        sock.settimeout(seconds)
        try:
            while sock.recv(4096):
                pass
            return True
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def connect():
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    idle = connect()
    if not closed_within(idle, 6):
        fail("an idle connection was not closed")
    half_headers = connect()
    half_headers.sendall(b"POST /collections/x/points/count HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    if not closed_within(half_headers, 6):
        fail("a connection with half-sent headers was not closed")
    half_body = connect()
    half_body.sendall(b"POST /collections/x/points/count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{\"a")
    if not closed_within(half_body, 6):
        fail("a connection with a half-sent body was not closed")
    # A body sent one byte every 0.4 s: never idle for 1 s, so only the whole-request deadline (3 s) stops it.
    drip = connect()
    drip.sendall(b"POST /collections/x/points/count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n")
    drip_started = time.monotonic()
    closed = False
    for byte in b" " * 100:
        try:
            drip.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        ready, _, _ = select.select([drip], [], [], 0.4)
        if ready and drip.recv(4096) == b"":
            closed = True
            break
        if time.monotonic() - drip_started > 15:
            break
    if not closed:
        fail("a client sending one byte at a time was never cut off")
    if time.monotonic() - drip_started < 2:
        fail("the dripping client was cut off before the request deadline, by something else")
    print(f"hardening: idle, half-sent headers, half-sent body and a dripping client are closed "
          f"(the drip after {time.monotonic() - drip_started:.1f} s)")

    stalled = [connect() for _ in range(3)]
    stalled[0].sendall(b"POST /collections/x/points/count HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    stalled[1].sendall(b"POST /collections/x/points/count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n{")
    stop_started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        fail("stalled clients kept the server from stopping on SIGTERM")
    if server.returncode != 0:
        fail(f"the server exited with status {server.returncode} on SIGTERM")
    print(f"hardening: with 3 stalled clients, SIGTERM stopped the server in {time.monotonic() - stop_started:.1f} s")
    for sock in stalled:
        sock.close()
finally:
    stop_all()
    shutil.rmtree(root, ignore_errors=True)
print("hardening: all checks passed")
