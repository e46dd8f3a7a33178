"""What a drill on a keepalived lab adds: a watch on which node holds the floating address,
and the takeover time three ways: keepalived's own log of its state changes (as the engine
timed each line), `ip addr` inside the nodes, and the clients' view (the first request
answered after the outage)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from labctl.db.nodes import BackgroundWatch
from labctl.experiments.events import DrillEvents
from labctl.experiments.timeline import Sample
from labctl.model.lab import Block, Lab
from labctl.vrrp.address import AddressView, Progress, address_view, transitions

WATCH_INTERVAL_S = 0.1
# Faults that take a node away: the first one on this block's nodes is the one timed.
CUTTING = ("kill", "stop", "pause", "partition")
MASTER = "MASTER"


class AddressWatch(BackgroundWatch):
    """Asks every node whether it holds the address, every WATCH_INTERVAL_S, until stopped."""

    name = "labctl-vrrp-watch"

    def __init__(self, lab: Lab, block: Block) -> None:
        super().__init__()
        self.lab, self.block = lab, block
        self.views: list[AddressView] = []

    def run(self) -> None:
        while not self.stopping.wait(WATCH_INTERVAL_S):
            self.views.append(address_view(self.lab, self.block))


class VrrpDrill:
    """The keepalived part of one drill run."""

    def __init__(self, lab: Lab, block: Block, progress: Progress) -> None:
        self.lab, self.block, self.progress = lab, block, progress
        self.watch = AddressWatch(lab, block)
        self.applied: list[dict[str, Any]] = []

    def subscribe(self, events: DrillEvents) -> None:
        """Watch the address while the load runs; once healed, time the takeover."""
        events.drill_started.add_listener(self.watch.start)
        events.fault_applied.add_listener(self._on_fault)
        events.load_finished.add_listener(self.watch.stop)
        events.healed.add_listener(self._on_healed)

    def _on_fault(self, fault: dict[str, Any]) -> None:
        self.applied.append({**fault, "in_place_at": time.time(), "died_at": self._died_at(fault)})

    def _died_at(self, fault: dict[str, Any]) -> float | None:
        # On a busy machine `docker kill` returns seconds after the node died: the engine's own
        # record of when its process ended is the moment the advertisements stopped.
        from labctl.errors import LabctlError
        from labctl.runtime import local_runtime

        if fault["fault"] not in ("kill", "stop") or fault["target"] not in self.block.instances():
            return None
        try:
            return local_runtime().finished_at(f"{self.lab.project}-{fault['target']}")
        except LabctlError:
            return None

    def _on_healed(self, run_dir: Path, faults: list[dict[str, Any]], results: dict[str, Any]) -> None:
        from labctl.experiments.load import read_samples

        ours = [f for f in self.applied if f["fault"] in CUTTING and f["target"] in self.block.instances()]
        if not ours:
            return
        first = min(ours, key=lambda f: float(f["at"]))
        logged = {name: transitions(self.lab, name) for name in self.block.instances() if name != first["target"]}
        results["takeover"] = takeover_report(first, self.watch.views, logged, read_samples(run_dir),
                                              _reverted_at(faults, first))


def _reverted_at(faults: list[dict[str, Any]], fault: dict[str, Any]) -> float:
    match = next((f for f in faults if f.get("id") == fault.get("id")), None)
    reverted = match.get("reverted_at") if match else None
    return float(reverted) if reverted is not None else float("inf")


def takeover_report(fault: dict[str, Any], views: list[AddressView], logged: dict[str, list[tuple[float, str]]],
                    samples: list[Sample], healed_at: float) -> dict[str, Any]:
    """Who held the address before the fault, who took it and how soon (keepalived's log, the
    `ip addr` watch, the clients), and how many requests failed in between."""
    # Timed from the node's death as the engine recorded it, else from when the fault was asked
    # for; failed requests are counted from when it was asked for.
    old, asked = str(fault["target"]), float(fault["at"])
    at = float(fault.get("died_at") or asked)
    before = [v for v in views if v.at < at and v.holder]
    masters = sorted((t, name) for name, states in logged.items() for t, state in states if state == MASTER and t >= at)
    seen = next((v for v in views if v.at >= at and v.holder not in (None, old)), None)
    client = client_takeover(samples, asked, healed_at)
    if client["client_takeover_s"]:
        client["client_takeover_s"] = round(client["client_takeover_s"] - (at - asked), 3)
    return {
        "old_holder": before[-1].holder if before else None, "fault_target": old,
        "new_holder": masters[0][1] if masters else (seen.holder if seen else None),
        "takeover_s": round(masters[0][0] - at, 3) if masters else None,
        "address_seen_s": round(seen.at - at, 3) if seen else None,
        "fault_took_s": round(float(fault["in_place_at"]) - asked, 3),
        "died_after_s": round(at - asked, 3),
        "watch_interval_s": WATCH_INTERVAL_S, **client,
        "holders_seen": _holders_seen(views),
    }


def client_takeover(samples: list[Sample], at: float, healed_at: float) -> dict[str, Any]:
    """From the fault to the first answered request sent after the last one that failed before
    the heal (0 when none failed), and how many failed."""
    # Requests in flight when the fault came fail too: every failure answered after it counts.
    failed = [s for s in samples if not s.ok and s.at >= at and s.sent_at < healed_at]
    if not failed:
        return {"client_takeover_s": 0.0, "failed_requests": 0}
    last = max(s.sent_at for s in failed)
    answered = sorted(s.at for s in samples if s.ok and s.sent_at > last)
    return {"client_takeover_s": round(answered[0] - at, 3) if answered else None, "failed_requests": len(failed)}


def _holders_seen(views: list[AddressView]) -> list[dict[str, Any]]:
    """Each change of holder the watch saw, in order."""
    seen: list[dict[str, Any]] = []
    for view in views:
        if not seen or seen[-1]["holders"] != view.holders:
            seen.append(view.to_json())
    return seen


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The drill table's rows for the takeover."""
    takeover = report.get("takeover")
    if not takeover:
        return []
    keepalived = "never" if takeover["takeover_s"] is None else f"{takeover['takeover_s']} s"
    seen = "never" if takeover["address_seen_s"] is None else f"{takeover['address_seen_s']} s"
    client = "never" if takeover["client_takeover_s"] is None else f"{takeover['client_takeover_s']} s"
    return [
        ("takeover", f"{takeover['fault_target']} -> {takeover['new_holder']} in {keepalived}",
         f"from the node's death to the standby's MASTER state (keepalived's log, timed by the engine; the node died "
         f"{takeover['died_after_s']} s after the kill was asked for)"),
        ("address seen moved", seen, f"ip addr inside the nodes, asked every {takeover['watch_interval_s']} s"),
        ("client takeover", f"{client}, {takeover['failed_requests']} failed requests",
         "from the node's death to the first answer after the last failure"),
    ]
