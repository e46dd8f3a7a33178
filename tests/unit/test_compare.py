"""`labctl compare` without Docker: planning errors before anything starts, and the table,
JSON rows and chart built from recorded drill.json files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from labctl.cli import main
from labctl.console import compare_table
from labctl.errors import LabctlError, UsageError
from labctl.experiments import compare, drill
from labctl.model.lab import load_lab
from labctl.model.overrides import parse_overrides

RECORDED = Path(__file__).parent / "data" / "compare"


def test_labs_are_parsed_in_order_once_each_with_its_drill() -> None:
    parsed = compare.parse_labs("lb-nginx, lb-haproxy,lb-dns", "kill-backend")
    assert list(parsed) == ["lb-nginx", "lb-haproxy", "lb-dns"] and set(parsed.values()) == {"kill-backend"}
    own = compare.parse_labs("db-failover,consensus-etcd:kill-leader, db-galera : kill-primary", "kill-primary")
    assert own == {"db-failover": "kill-primary", "consensus-etcd": "kill-leader", "db-galera": "kill-primary"}
    with pytest.raises(UsageError, match="more than once"):
        compare.parse_labs("lb-nginx,lb-nginx:pause-backend", "kill-backend")
    with pytest.raises(UsageError, match="'consensus-etcd:' is not LAB or LAB:DRILL"):
        compare.parse_labs("consensus-etcd:", "kill-leader")
    with pytest.raises(UsageError):
        compare.parse_labs(" , ", "kill-backend")


@pytest.fixture()
def two_labs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("has", "lacks"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lab.yaml").write_text("title: t\nsummary: s\napp: {kind: app}\n")
    (tmp_path / "has" / "drills").mkdir()
    (tmp_path / "has" / "drills" / "kill-backend.yaml").write_text(
        "title: k\nload: {duration: 10s}\nsteps:\n  - {at: 2s, fault: kill, target: app}\n")
    monkeypatch.setenv("LABCTL_LABS_DIR", str(tmp_path))
    monkeypatch.setattr(compare, "_state", lambda lab: "up")  # no engine needed to plan
    return tmp_path


def test_plan_reports_every_bad_lab_before_anything_starts(two_labs: Path) -> None:
    assert list(compare.plan({"has": "kill-backend"})) == ["has"]
    with pytest.raises(LabctlError) as info:
        compare.plan({"has": "kill-backend", "lacks": "kill-backend", "nope": "kill-backend"})
    text = str(info.value)
    assert text.startswith("cannot compare drill 'kill-backend'; nothing was started:")
    assert "lacks: lab 'lacks' has no drill 'kill-backend' (drills: none)" in text
    assert "nope: no lab named 'nope'" in text
    assert "  has:" not in text


def test_cli_exits_1_with_the_plan_error(two_labs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    monkeypatch.setattr(drill, "run_drill", lambda *a: started.append("drill"))
    result = CliRunner().invoke(main, ["compare", "--labs", "has,nope", "--drill", "kill-backend"])
    assert result.exit_code == 1 and "no lab named 'nope'" in result.output and started == []
    assert CliRunner().invoke(main, ["compare", "--drill", "kill-backend"]).exit_code == 2


def recorded_rows() -> list[dict[str, object]]:
    return compare.compare_rows(compare.load_reports(sorted(RECORDED.glob("*.json"))))


def test_rows_from_recorded_drills() -> None:
    rows = {str(row["lab"]): row for row in recorded_rows()}
    assert sorted(rows) == ["lb-dns", "lb-haproxy", "lb-nginx"]
    for row in rows.values():
        assert set(compare.COLUMNS) <= set(row)
        assert row["drill"] == "kill-backend" and row["run_dir"]
    assert rows["lb-dns"]["generator"] == "in-lab client"
    assert rows["lb-nginx"]["generator"] == "locust"
    # The recorded runs show the lesson: only DNS round robin fails requests when a backend dies.
    assert rows["lb-nginx"]["failed_during_fault"] == 0
    assert int(rows["lb-dns"]["failed_during_fault"]) > int(rows["lb-haproxy"]["failed_during_fault"])  # type: ignore[call-overload]
    assert rows["lb-haproxy"]["verdict"] == "fail" and rows["lb-haproxy"]["failures"] == 1


def test_table_and_chart(tmp_path: Path) -> None:
    rows = recorded_rows()
    for width in (200, 80):
        console = Console(record=True, width=width)
        console.print(compare_table(rows, "kill-backend: 10 users, 150 req/s on every lab", width))
        text = console.export_text()
        if width == 200:
            for heading in ("req/s", "p95 ms", "failed in fault", "degraded s", "detect s", "recover s"):
                assert heading in text
        assert max(len(line.rstrip()) for line in text.splitlines()) <= width
        for row in rows:  # on a narrow terminal too: the headings wrap, no lab name or figure is cut
            line = next(line for line in text.splitlines() if line.lstrip("│ ").startswith(f"{row['lab']} "))
            assert compare.cell(row, "p95_ms") in line and str(row["failed_during_fault"]) in line
            assert line.rstrip(" │").endswith(compare.cell(row, "recovery_s"))  # not cropped
    compare.draw_compare(tmp_path / "compare.png", rows, "kill-backend")
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_aborted_drill_shows_dashes() -> None:
    aborted = {"lab": "x", "drill": "d", "verdict": "aborted", "requests": 0, "failures": 0,
               "error_window_s": 0.0, "recovery_s": 0.0}
    [row] = compare.compare_rows([aborted])
    assert compare.cell(row, "rps") == "-" and compare.cell(row, "p95_ms") == "-"
    assert compare.cell(row, "detection_s") == "-" and compare.cell(row, "recovery_s") == "0.00"


def test_the_ledger_columns_appear_only_when_a_drill_kept_a_ledger() -> None:
    web = recorded_rows()
    assert compare.columns_for(web) == compare.COLUMNS
    writes = {"attempted": 900, "acknowledged": 880, "failed": 15, "unknown": 5, "lost": 0}
    ledger = {"writes": writes, "rto_s": 5.28, "write_error_window": {"duration_s": 4.9, "writes": 20},
              "steady_write_ms": {"writes": 400, "p50": 11.25, "p99": 48.5}, "nodes": 3}
    [group, galera] = compare.compare_rows([
        {**web_report(), **ledger, "lab": "db-group-replication", "drill": "kill-primary"},
        {**web_report(), **ledger, "lab": "db-galera", "drill": "kill-primary", "rto_s": 6.2, "nodes": 4}])
    assert group["refused_writes"] == 20 and group["write_error_window_s"] == 4.9 and galera["nodes"] == 4
    columns = compare.columns_for([group, galera])
    assert list(columns)[:4] == ["lab", "drill", "verdict", "nodes"] and "steady_write_p99_ms" in columns
    console = Console(width=200, record=True)
    console.print(compare_table([group, galera], "kill-primary"))
    text = console.export_text()
    assert "RTO" in text and "acked" in text and "5.28" in text and "6.20" in text
    assert "11.2" in text and "48.5" in text and "refused" in text


def web_report() -> dict[str, object]:
    return json.loads(sorted(RECORDED.glob("*.json"))[0].read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.parametrize(("lab", "overrides", "nodes"), [
    ("db-failover", [], 3), ("db-semisync", [], 3), ("db-master-master", [], 2), ("db-group-replication", [], 3),
    ("db-galera", [], 3), ("db-galera", ["galera.nodes=2", "galera.arbitrator=true"], 3),
    ("consensus-etcd", [], 3), ("db-sharding", [], 3), ("kv-redis-cluster", [], 6), ("lb-nginx", [], 0),
])
def test_nodes_are_the_containers_that_hold_the_data(lab: str, overrides: list[str], nodes: int) -> None:
    # The app, the load balancers and the DNS server are not counted; Galera's arbitrator votes.
    assert compare.data_nodes(load_lab(lab, parse_overrides(overrides))) == nodes


def test_a_lab_with_its_own_user_keeps_it_and_the_others_get_the_rate() -> None:
    shape = compare.LoadShape(users=4, rate=60.0)
    semisync = compare.same_load("db-semisync", drill.load_drill("db-semisync", "kill-primary"), shape)
    assert semisync.load["users"] == 4 and "rate" not in semisync.load  # its ledger writer, closed model
    nginx = compare.same_load("lb-nginx", drill.load_drill("lb-nginx", "kill-backend"), shape)
    assert (nginx.load["users"], nginx.load["rate"]) == (4, 60.0)
    assert nginx.load["duration"] == drill.load_drill("lb-nginx", "kill-backend").load["duration"]
