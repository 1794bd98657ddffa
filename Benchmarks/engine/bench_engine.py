"""The storage-engine benchmark of Tessera (`make bench-engine`): SciFact through `tessera serve` (open → first
query, upserts alone, queries alone, both together), a filter on an indexed keyword field keeping 1% of 10⁶
points, and a synthetic collection of SYNTH_TOKENS tokens (import, optimise, disk, compressed and hybrid queries,
memory). Prints a Markdown table and a JSON summary on standard output; progress goes to standard error.

Run it through Benchmarks/bench-engine.sh, which makes the virtual environment and the temporary folder and
stops stray servers. Settings are environment variables (see the script's header)."""

import json
import math
import os
import sys
import time
import traceback

from engine_common import log, machine


def env_int(name, default):
    value = os.environ.get(name, "")
    return int(float(value)) if value.strip() else default


def env_flag(name):
    return os.environ.get(name, "0") not in ("", "0", "false", "no")


class Settings:
    def __init__(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.root = root
        self.tessera = os.environ.get("TESSERA") or os.path.join(root, ".build/release/tessera")
        self.collections = os.environ.get("COLLECTIONS") or os.path.join(root, ".build/eval-collections")
        self.work = os.environ["BENCH_WORK"]
        self.pidfile = os.path.join(self.work, "servers.pid")
        self.keep = env_flag("KEEP")
        self.seed = env_int("SEED", 1)
        self.threads = env_int("SERVE_THREADS", 1)
        # A. SciFact
        self.skip_scifact = env_flag("SKIP_SCIFACT")
        self.scifact_name = os.environ.get("SCIFACT_COLLECTION", "scifact-f16-plain")
        self.drop_caches = not env_flag("NO_DROP_CACHES")
        self.open_repeats = env_int("OPEN_REPEATS", 5)
        self.upserts = env_int("UPSERTS", 200)
        self.queries = env_int("QUERIES", 200)
        self.query_threads = env_int("QUERY_THREADS", 2)
        self.warmup_queries = env_int("WARMUP_QUERIES", 10)
        self.query_documents = env_int("QUERY_DOCUMENTS", 32)
        # B. Filter
        self.skip_filter = env_flag("SKIP_FILTER")
        self.filter_points = env_int("FILTER_POINTS", 1_000_000)
        self.filter_groups = env_int("FILTER_GROUPS", 100)
        self.filter_repeats = env_int("FILTER_REPEATS", 50)
        self.filter_scan_repeats = env_int("FILTER_SCAN_REPEATS", 10)
        # C. Synthetic
        self.skip_synth = env_flag("SKIP_SYNTH")
        self.synth_tokens = env_int("SYNTH_TOKENS", 20_000_000)
        self.synth_dimension = env_int("SYNTH_DIMENSION", 384)
        self.synth_centres = env_int("SYNTH_CENTRES", 4096)
        self.synth_queries = env_int("SYNTH_QUERIES", 100)
        self.synth_nprobe = env_int("SYNTH_NPROBE", 8)
        # The derived indexes `tessera optimize` builds for the synthetic collection (compressed, hnsw, bm25).
        self.synth_indexes = [kind for kind in os.environ.get("SYNTH_INDEXES", "compressed,hnsw").split(",") if kind]
        self.synth_noise = float(os.environ.get("SYNTH_NOISE", "0.03"))


class Report:
    """Rows of the Markdown table, and what the JSON summary says beside them."""

    def __init__(self):
        self.rows = []
        self.context = {}
        self.failures = []

    def add(self, part, key, measure, value, unit, upper=None, target_text=None, note=None):
        row = {"part": part, "key": key, "measure": measure, "value": value, "unit": unit}
        if upper is not None and isinstance(value, (int, float)) and not math.isnan(value):
            row["target"] = upper
            row["target_text"] = target_text or f"≤ {format_value(upper, unit)}"
            row["ratio"] = value / upper if upper else float("inf")
            row["met"] = value <= upper
            if target_text:
                row["target_text"] += f" = {format_value(upper, unit)}"
        if note:
            row["note"] = note
        self.rows.append(row)
        log(f"{part} | {measure} | {format_value(value, unit)}")

    def markdown(self):
        lines = ["| part | measure | value | target (or note) | value / target | met |",
                 "|---|---|---:|---|---:|:---:|"]
        for row in self.rows:
            target = row.get("target_text", row.get("note", ""))
            if "target_text" in row and row.get("note"):
                target += f" ({row['note']})"
            ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
            met = ("yes" if row["met"] else "**no**") if "met" in row else ""
            lines.append(f"| {row['part']} | {row['measure']} | {format_value(row['value'], row['unit'])} "
                         f"| {target} | {ratio} | {met} |")
        return "\n".join(lines)


def format_value(value, unit):
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "bytes":
        if value >= 2**30:
            return f"{value / 2**30:.2f} GiB"
        return f"{value / 2**20:.1f} MiB"
    if unit == "ms":
        return f"{value:.3f} ms" if value < 1 else f"{value:.1f} ms" if value >= 100 else f"{value:.2f} ms"
    if unit == "s":
        return f"{value:.1f} s"
    if unit is None:
        return f"{value}"
    return f"{value:g} {unit}"


def tessera_version(tessera):
    import subprocess
    try:
        return subprocess.run([tessera, "--version"], stdout=subprocess.PIPE, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main():
    settings = Settings()
    report = Report()
    started = time.time()
    host = machine()
    log(f"machine: {host['cpu']}, {host['cores']} cores; tessera {settings.tessera}")
    parts = []
    if not settings.skip_scifact:
        import part_scifact
        parts.append(("A. SciFact", part_scifact.run))
    if not settings.skip_filter:
        import part_filter
        parts.append(("B. filter", part_filter.run))
    if not settings.skip_synth:
        import part_synth
        parts.append(("C. synthetic", part_synth.run))
    for name, run in parts:
        part_started = time.perf_counter()
        try:
            run(settings, report)
        except Exception as error:  # noqa: BLE001 - one failed part does not hide the others
            traceback.print_exc()
            report.failures.append(f"{name}: {error}")
        report.context.setdefault("part_seconds", {})[name] = round(time.perf_counter() - part_started, 1)

    print("## Tessera storage engine benchmark\n")
    print(f"Machine: {host['cpu']}, {host['cores']} cores, {host['memory_bytes'] / 2**30:.1f} GiB memory. "
          f"`tessera serve --threads {settings.threads}` (MaxSim threads per query); "
          f"{settings.query_threads} client query threads where stated. "
          "Latencies are client-side HTTP round trips on loopback (keep-alive connections), "
          "medians and nearest-rank percentiles.\n")
    print(report.markdown())
    if report.failures:
        print("\nFailed parts:\n" + "\n".join(f"- {failure}" for failure in report.failures))
    summary = {
        "machine": host,
        "tessera": settings.tessera,
        "tessera_version": tessera_version(settings.tessera),
        "serve_threads": settings.threads,
        "query_threads": settings.query_threads,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "results": {row["key"]: row["value"] for row in report.rows},
        "rows": report.rows,
        "context": report.context,
        "failures": report.failures,
    }
    print("\n```json")
    print(json.dumps(summary, indent=1, default=str, ensure_ascii=False))
    print("```")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
