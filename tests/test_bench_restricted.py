"""`python -m benchmarks restricted`: the inner solvers on the same restricted program."""

import re

from benchmarks.bench_restricted import main


def test_restricted_benchmark_table(capsys):
    assert main(["--patterns", "6", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    rows = [r for r in out.splitlines() if re.match(r"\| 6 \|", r)]
    assert {r.split("|")[4].strip() for r in rows} == {"socp", "clarabel"}
    for r in rows:
        excess = float(r.split("|")[6])
        assert 0.0 <= excess <= 1e-6
