"""The dashboard's data without Docker: sample files read as they grow (a torn last line waits
for the rest), the timeline and each backend's rate, and the page it serves."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from labctl.dashboard.server import page
from labctl.dashboard.state import RATE_WINDOW_S, TIMELINE_S, SampleTail, live_run, rates


def test_sample_files_are_read_once_and_a_torn_line_waits_for_its_end(tmp_path: Path) -> None:
    samples = tmp_path / "main" / "samples-1.csv"
    samples.parent.mkdir()
    samples.write_text("100.1,5.0,app-1,1,5.0,200,-\n100.2,5.0,,0,5.0,0,-\n100.3,5.0,app-2,1,5", encoding="utf-8")
    tail = SampleTail(tmp_path)
    tail.per_second = {}
    tail._read(samples)
    assert tail.per_second == {100: Counter({"app-1": 1, "failed": 1})}
    with open(samples, "a", encoding="utf-8") as handle:
        handle.write(".0,200,-\n101.0,5.0,app-2,1,5.0,200,-\n")
    tail._read(samples)
    assert tail.per_second == {100: Counter({"app-1": 1, "failed": 1, "app-2": 1}), 101: Counter({"app-2": 1})}


def test_rates_leave_out_the_second_being_written_and_average_the_window() -> None:
    per_second = {s: Counter({"app-1": 6, "app-2": 3}) for s in range(990, 1000)}
    per_second[999]["app-2"] = 0  # app-2 killed in the last whole second
    per_second[1000] = Counter({"app-1": 1})  # still being written
    found = rates(per_second, now=1000.4)
    assert found["seconds"][-1] == 999 and len(found["seconds"]) == TIMELINE_S
    assert found["now_rps"] == {"app-1": 6.0, "app-2": round(6 / RATE_WINDOW_S, 1)}
    assert found["series"]["app-2"][-2:] == [3, 0]


def test_the_page_polls_the_state_it_is_served_with() -> None:
    html = page().decode()
    assert 'fetch("/state.json"' in html and "http://" not in html.replace("http://www.w3.org", "")


def test_the_live_run_is_the_one_whose_samples_grew_just_now(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("LABCTL_HOME", str(tmp_path))
    runs = tmp_path / "runs" / "lb-nginx"
    old = runs / "20261207-010000-load" / "samples-1.csv"
    new = runs / "20261207-020000-drill-x" / "main" / "samples-2.csv"
    for path in (old, new):
        path.parent.mkdir(parents=True)
        path.write_text("1.0,1.0,app-1,1,1.0,200,-\n", encoding="utf-8")
    os.utime(old, (time.time() - 60, time.time() - 60))
    assert live_run("lb-nginx") == runs / "20261207-020000-drill-x"
    os.utime(new, (time.time() - 60, time.time() - 60))
    assert live_run("lb-nginx") is None  # nothing running now
