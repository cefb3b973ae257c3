"""JUnit report parsing at size (a benchmark, not a test).

Writes a synthetic JUnit report (default 200,000 test cases in about 50 MB: a tenth of
them failing with a stack trace, some with captured output, ANSI colours and a stray
control character) to a temporary file, then parses it in a fresh process with the
production parser (apps/artifacts/junit.py, streamed from the file with its production
limits) and measures throughput and that process's peak RSS. The median of --rounds
rounds is reported. Throughput is size over the parsing process's CPU time (on a machine
shared with other work, wall-clock time measures the neighbours too); the wall-clock
figure is printed beside it.

    .venv/bin/python bench/testreport_parse.py [--cases N] [--mb N] [--rounds N] [--keep-all]

Targets: at least 20 MB/s and under 200 MB peak RSS. The last line of output is one JSON
object: mb, mb_per_s, wall_mb_per_s, peak_rss_mb, cases (tests counted in the report), kept (tests
kept as results; MAX_CASES unless --keep-all).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE = "".join(
    f"\tat com.example.service.module{i}.Handler.process(Handler.java:{100 + i})\n"
    for i in range(14)
)


def write_report(path: Path, cases: int, target_mb: float) -> int:
    """A report of `cases` cases, padded with output so it lands near `target_mb`."""
    failing_every = 10
    fail_body = (
        "org.opentest4j.AssertionFailedError: expected: &lt;200&gt; but was: &lt;503&gt;\n" + TRACE
    )
    failing = cases // failing_every
    plain = 95 * (cases - failing) + (len(fail_body) + 260) * failing + 200
    pad = max(0, int(target_mb * 1024 * 1024) - plain) // max(1, cases // 4)
    out_text = ("\x1b[32mINFO\x1b[0m request ok " + "x" * max(0, pad - 40))[:pad]
    with path.open("w", encoding="utf-8") as fh:
        fh.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites tests="{cases}">\n')
        for i in range(cases):
            if i % 1000 == 0:
                if i:
                    fh.write("</testsuite>\n")
                fh.write(f'<testsuite name="com.example.Suite{i // 1000:04d}" time="12.5">\n')
            head = (
                f'<testcase classname="com.example.Suite{i // 1000:04d}" '
                f'name="test_case_{i:06d}_behaves" time="0.{i % 997:04d}"'
            )
            if i % failing_every == 0:
                fh.write(
                    f'{head}><failure message="expected: &lt;200&gt; but was: &lt;503&gt;" '
                    f'type="org.opentest4j.AssertionFailedError">{fail_body}</failure>'
                    f"<system-out>{out_text}\x07</system-out></testcase>\n"
                )
            elif i % 4 == 1 and pad:
                fh.write(f"{head}><system-out>{out_text}</system-out></testcase>\n")
            else:
                fh.write(f"{head}/>\n")
        fh.write("</testsuite>\n</testsuites>\n")
    return path.stat().st_size


def child(path: str, keep_all: bool) -> None:
    sys.path.insert(0, str(ROOT))
    from apps.artifacts import junit

    if keep_all:
        junit.MAX_CASES = 10**9
    started, cpu = time.perf_counter(), time.process_time()
    with open(path, "rb") as fh:
        parsed = junit.parse(fh)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_rss_mb": rss_kb / 1024,
                "cases": parsed.seen,
                "kept": len(parsed.cases),
                "failed": sum(1 for c in parsed.cases if c.status == "failed"),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=200_000)
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep-all", action="store_true", help="keep every case, not MAX_CASES")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.keep_all)
        return
    with tempfile.TemporaryDirectory(prefix="deltaci-bench-") as tmp:
        path = Path(tmp) / "junit.xml"
        size = write_report(path, args.cases, args.mb)
        mb = size / (1024 * 1024)
        print(f"report: {mb:.1f} MB, {args.cases} cases")
        rounds = []
        for n in range(args.rounds):
            cmd = [sys.executable, __file__, "--child", str(path)]
            if args.keep_all:
                cmd.append("--keep-all")
            got = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
            rounds.append(got)
            print(
                f"round {n + 1}: {got['cpu_seconds']:.2f} s CPU "
                f"({mb / got['cpu_seconds']:.1f} MB/s), "
                f"{got['seconds']:.2f} s wall ({mb / got['seconds']:.1f} MB/s), "
                f"peak RSS {got['peak_rss_mb']:.0f} MB, {got['cases']} cases, {got['kept']} kept"
            )
    cpu = statistics.median(r["cpu_seconds"] for r in rounds)
    wall = statistics.median(r["seconds"] for r in rounds)
    result = {
        "mb": round(mb, 1),
        "mb_per_s": round(mb / cpu, 1),
        "wall_mb_per_s": round(mb / wall, 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in rounds), 1),
        "cases": rounds[0]["cases"],
        "kept": rounds[0]["kept"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
