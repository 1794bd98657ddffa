"""What every part of the storage-engine benchmark shares: `tessera serve` as a child process (started on a
free loopback port, waited for with bounded waits, always stopped), keep-alive HTTP requests, the server's
memory from /proc, percentiles, and the machine's description."""

import http.client
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time


def log(*parts):
    print("[bench-engine]", *parts, file=sys.stderr, flush=True)


def percentile(values, fraction):
    """The nearest-rank percentile of a list: the smallest value with at least `fraction` of them at or below it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def median(values):
    if not values:
        return float("nan")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def proc_status(pid):
    """VmRSS, VmHWM, RssAnon (heap, stacks) and RssFile (mapped files: segments, indexes, the binary) of a
    process, in bytes (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            text = status.read()
    except OSError:
        return None
    values = {}
    for key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
        match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
        values[key] = int(match.group(1)) * 1024 if match else None
    return values


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo") as meminfo:
            memory = int(meminfo.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "memory_bytes": memory}


def drop_page_cache():
    """Drops the page cache (root only). True when it was dropped."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")
        return True
    except OSError as error:
        log(f"page cache not dropped ({error}); cold figures are skipped")
        return False


def encode(body):
    """A request body as compact JSON bytes (encoded before a timed loop, so Python's encoder is not timed)."""
    return json.dumps(body, separators=(",", ":")).encode()


class Client:
    """One keep-alive connection; one per thread."""

    def __init__(self, port, timeout=120):
        self.port = port
        self.timeout = timeout
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def raw(self, method, path, data=None):
        """Sends a request; returns (status, body bytes, seconds from sending to the last byte read)."""
        headers = {"content-type": "application/json"} if data is not None else {}
        for attempt in range(2):
            started = time.perf_counter()
            try:
                self.connection.request(method, path, body=data, headers=headers)
                response = self.connection.getresponse()
                payload = response.read()
                return response.status, payload, time.perf_counter() - started
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once and resend.
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method, path, body=None, expect=200):
        data = encode(body) if body is not None and not isinstance(body, bytes) else body
        status, payload, seconds = self.raw(method, path, data)
        decoded = json.loads(payload) if payload else None
        if expect is not None and status != expect:
            raise RuntimeError(f"{method} {path} answered {status}: {payload[:500]!r}")
        return decoded, seconds

    def timed(self, method, path, data):
        """A request whose latency is measured: raises unless it answered 200."""
        status, payload, seconds = self.raw(method, path, data)
        if status != 200:
            raise RuntimeError(f"{method} {path} answered {status}: {payload[:500]!r}")
        return seconds, payload

    def close(self):
        self.connection.close()


class Server:
    """`tessera serve` over one data folder, on a free loopback port.

    The port comes from the server's own 'listening on HOST:PORT' line (started with --port 0). Its pid is
    written to PIDFILE so that the shell script's trap can stop it if this process dies first. Use as a context
    manager: the server gets SIGTERM on exit, then SIGKILL after a bounded wait.
    """

    def __init__(self, tessera, data, threads, pidfile=None, extra=()):
        self.tessera = tessera
        self.data = data
        self.threads = threads
        self.pidfile = pidfile
        self.extra = list(extra)
        self.process = None
        self.port = None
        self.started = None
        self.listening_seconds = None
        self._lines = []

    def start(self, timeout=120):
        command = [self.tessera, "serve", "--data", self.data, "--host", "127.0.0.1", "--port", "0",
                   "--threads", str(self.threads), "--log-level", "warning", *self.extra]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self.pidfile:
            with open(self.pidfile, "a") as pids:
                pids.write(f"{self.process.pid}\n")
        found = threading.Event()

        def read_stdout():
            for line in self.process.stdout:
                self._lines.append(line)
                match = re.search(r"listening on .*:(\d+)\s*$", line)
                if match and self.port is None:
                    self.port = int(match.group(1))
                    self.listening_seconds = time.perf_counter() - self.started
                    found.set()
            found.set()

        def drain_stderr():
            for line in self.process.stderr:
                self._lines.append(line)

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=drain_stderr, daemon=True).start()
        if not found.wait(timeout) or self.port is None:
            self.stop()
            raise RuntimeError("tessera serve did not report its port:\n" + "".join(self._lines[-20:]))
        return self

    def wait_ready(self, timeout=60):
        """Polls GET /healthz until it answers 200; returns the seconds since the process started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("tessera serve exited:\n" + "".join(self._lines[-20:]))
            try:
                client = Client(self.port, timeout=5)
                status, _, _ = client.raw("GET", "/healthz")
                client.close()
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.002)
        raise RuntimeError("tessera serve did not answer /healthz in time")

    def memory(self):
        return proc_status(self.process.pid) if self.process else None

    def stop(self, timeout=35):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"tessera serve (pid {self.process.pid}) ignored SIGTERM for {timeout} s; killing it")
            self.process.kill()
            self.process.wait(10)

    def __enter__(self):
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class MemorySampler:
    """Samples a process's VmRSS every interval seconds in a thread; keeps the largest value seen."""

    def __init__(self, pid, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.last = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            values = proc_status(self.pid)
            if values:
                self.last = values
                self.peak_rss = max(self.peak_rss, values["VmRSS"] or 0)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        values = proc_status(self.pid)
        if values:
            self.last = values
            self.peak_rss = max(self.peak_rss, values["VmRSS"] or 0)
        return False


def run_command(command, what, env=None):
    """Runs a tessera command (stderr passes through to ours); returns (seconds, stdout)."""
    log("$", " ".join(command))
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed with status {result.returncode}:\n{result.stdout[-2000:]}")
    return seconds, result.stdout


def disk_bytes(path):
    result = subprocess.run(["du", "-sb", path], stdout=subprocess.PIPE, text=True, check=True)
    return int(result.stdout.split()[0])
