"""The table of hostile inputs the library handles, from the test suite's hostile cases.

Usage::

    python scripts/adversarial.py              # every case, a few minutes on 2 cores
    python scripts/adversarial.py -k plugin    # the cases whose test names match (pytest's -k)
    python scripts/adversarial.py --verbose    # one line per case

The cases are the tests of ``tests/core/test_hostile.py`` and ``tests/train/test_hostile_train.py``
(one place: a new hostile input is a new test there). This runs them with pytest and prints one
row per section of those files (the ``# -- N. title`` comments): how many cases it holds and how
many are handled well, i.e. pass: the library's own one-line error naming what is wrong (and
the file), or the correct result where the input is acceptable. Exit status: pytest's (0 when
every case is handled).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CASE_FILES = ("tests/core/test_hostile.py", "tests/train/test_hostile_train.py")
SECTION = re.compile(r"^# -- (.+?) -+$")


def sections(path: Path) -> list[tuple[int, str]]:
    """``(first line, title)`` of each ``# -- title ---`` section of a test file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = [(i + 1, m.group(1)) for i, line in enumerate(lines) if (m := SECTION.match(line))]
    return [(1, path.stem.removeprefix("test_").replace("_", " ")), *found]


class Outcomes:
    """A pytest plugin recording each case's outcome by file and line."""

    def __init__(self) -> None:
        self.cases: list[tuple[str, int, str, str]] = []  # (file, line, test id, outcome)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            file, line, _ = report.location
            self.cases.append((file, (line or 0) + 1, report.nodeid.split("::", 1)[1], report.outcome))


def table(cases: list[tuple[str, int, str, str]], verbose: bool = False) -> str:
    """One row per section: cases and how many are handled (passed); with ``verbose``, every case."""
    rows: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for file, line, name, outcome in cases:
        title = [t for start, t in sections(REPO / file) if start <= line][-1]
        rows[(file, title)].append((name, outcome))
    width = max((len(t) for _, t in rows), default=10)
    out = [f"{'section':{width}}  cases  handled", f"{'-' * width}  -----  -------"]
    for (_, title), results in rows.items():
        handled = sum(o == "passed" for _, o in results)
        out.append(f"{title:{width}}  {len(results):5d}  {handled:7d}")
        if verbose:
            out += [f"  {'ok  ' if o == 'passed' else o.upper() + ' '}{name}" for name, o in results]
    total = [o for *_, o in cases]
    out.append(f"{'all':{width}}  {len(total):5d}  {total.count('passed'):7d}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="only the cases whose names match (pytest's -k expression)")
    parser.add_argument("--verbose", action="store_true", help="one line per case")
    args = parser.parse_args(argv)
    outcomes = Outcomes()
    options = ["-q", "-p", "no:cacheprovider", "--no-header"]
    status = pytest.main(
        [*options, *(["-k", args.k] if args.k else []), *(str(REPO / f) for f in CASE_FILES)], plugins=[outcomes]
    )
    print(table(outcomes.cases, args.verbose))
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
