"""Check the junit xml reports written by `make test`; print one line per stage.

Usage: python scripts/check_junit.py [--dir .ci/out] STAGE [STAGE ...]

A STAGE is `serial` (the report `serial.xml`) or `mpiN` (the N per-rank reports
`mpiN-rank0.xml` ... `mpiN-rank<N-1>.xml` written by scripts/pytest_mpi_rank.sh
under `mpirun -n N`). A stage passes when every expected report exists, none
records a failure or error, and each rank actually ran at least one test (a run
where everything was skipped or deselected means the MPI suite did not run).
Exit status 0 when all stages pass, 1 otherwise. Standard library only.
"""

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

LOG_EXCERPT_LINES = 15


@dataclass
class Report:
    """Outcome counts of one junit xml file."""

    passed: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)  # "test id: message"
    seconds: float = 0.0

    @property
    def ran(self):
        return self.passed + len(self.failed)


def read_report(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    report = Report()
    for suite in suites:
        report.seconds += float(suite.get("time", 0.0))
        for case in suite.iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
            bad = case.findall("failure") + case.findall("error")
            if bad:
                message = (bad[0].get("message") or "").splitlines()
                report.failed.append(f"{name}: {message[0] if message else bad[0].tag}")
            elif case.find("skipped") is not None:
                report.skipped += 1
            else:
                report.passed += 1
    return report


def stage_files(directory, stage):
    match = re.fullmatch(r"mpi(\d+)", stage)
    if match:
        nranks = int(match.group(1))
        return f"mpirun -n {nranks}", [directory / f"{stage}-rank{r}.xml" for r in range(nranks)]
    if stage == "serial":
        return "serial", [directory / "serial.xml"]
    raise SystemExit(f"check_junit.py: unknown stage {stage!r}; expected 'serial' or 'mpiN'")


def show_log_excerpt(xml_path):
    """Print the informative part of a rank's console log: the start of pytest's
    faulthandler dump if the rank timed out in a test (innermost frames first,
    naming the hung test), otherwise the last lines."""
    log = xml_path.with_suffix(".log")
    if not log.exists():
        return
    lines = log.read_text(errors="replace").splitlines()
    dumps = [k for k, line in enumerate(lines) if line.startswith("Timeout (")]
    if dumps:
        excerpt, what = lines[dumps[0]:dumps[0] + LOG_EXCERPT_LINES], "stack dump in"
    else:
        excerpt, what = lines[-LOG_EXCERPT_LINES:], "last lines of"
    print(f"    --- {what} {log} ---")
    for line in excerpt:
        print(f"    {line}")


def check_stage(directory, stage):
    """Print the stage's summary line (and details of problems); return True if it passed."""
    label, paths = stage_files(directory, stage)
    problems = []
    reports = {}
    for rank, path in enumerate(paths):
        who = f"rank {rank}" if len(paths) > 1 else "run"
        if not path.exists():
            problems.append((path, f"{who}: no report {path} (crashed, hung or killed?)"))
            continue
        try:
            report = read_report(path)
        except ET.ParseError as exc:
            problems.append((path, f"{who}: unreadable report {path}: {exc}"))
            continue
        reports[rank] = report
        for failure in report.failed:
            problems.append((path, f"{who}: FAILED {failure}"))
        if report.ran == 0:
            problems.append((path, f"{who}: no test ran ({report.skipped} skipped)"))

    counts = sorted({(r.ran, r.skipped) for r in reports.values()})
    if not counts:
        tally = "no reports"
    elif len(counts) == 1:
        ran, skipped = counts[0]
        per_rank = " on each rank" if len(paths) > 1 else ""
        tally = f"{ran} ran ({skipped} skipped){per_rank}"
    else:
        tally = "; ".join(f"rank {k}: {r.ran} ran ({r.skipped} skipped)" for k, r in reports.items())
    nfailed = sum(len(r.failed) for r in reports.values())
    seconds = max((r.seconds for r in reports.values()), default=0.0)
    verdict = "FAILED" if problems else "ok"
    print(f"[{label}] {verdict}: {tally}, {nfailed} failed/errors, "
          f"{len(reports)}/{len(paths)} reports, {seconds:.1f} s")
    for _, problem in problems:
        print(f"    {problem}")
    # A rank without a report crashed or was killed: its console output says why.
    for path in dict.fromkeys(path for path, _ in problems):
        if path.exists():
            if path.with_suffix(".log").exists():
                print(f"    details: {path.with_suffix('.log')}")
        else:
            show_log_excerpt(path)
    return not problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(".ci/out"), help="where the reports are")
    parser.add_argument("stages", nargs="+", help="serial, mpi2, mpi3, ...")
    args = parser.parse_args(argv)
    results = [check_stage(args.dir, stage) for stage in args.stages]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
