"""Commands that break a lab and mend it: chaos, heal."""

from __future__ import annotations

import time

import click

from labctl.cli.options import LazyChoice, as_option


def _faults() -> tuple[str, ...]:
    from labctl.experiments.chaos import FAULTS

    return FAULTS


@click.command("chaos")
@as_option
@click.argument("lab")
@click.argument("fault", type=LazyChoice(_faults))
@click.argument("target")
@click.option("--percent", type=float, default=None, help="loss: share of packets dropped; fail: share of 500s.")
@click.option("--rate", "bandwidth", default=None, help="bandwidth: limit like 1mbit.")
@click.option("--ms", type=int, default=None, help="latency / slow: added delay in milliseconds.")
@click.option("--from", "peer", default=None, help="partition: cut TARGET off from this target only.")
@click.option("--duration", default=None, help="Keep the fault this long, then revert it (e.g. 20s).")
def chaos_cmd(lab: str, fault: str, target: str, percent: float | None, bandwidth: str | None, ms: int | None,
              peer: str | None, duration: str | None) -> None:
    """Inject a fault into TARGET (lb, app, app.2, random:app); `labctl heal LAB` reverts it."""
    from labctl import console
    from labctl.experiments import chaos

    params = {k: v for k, v in {"percent": percent, "rate": bandwidth, "ms": ms, "from": peer}.items() if v is not None}
    seconds = chaos.hold_seconds(duration)
    faults = chaos.inject(console.attached(lab), fault, target, params)
    for item in faults:
        console.out.print(f"{time.strftime('%H:%M:%S', time.localtime(item.at))} {fault} {item.target} "
                          f"{params or ''} (id {item.id}{', until healed' if item.revert and not seconds else ''})")
    if seconds and any(f.revert for f in faults):
        with console.progress(f"{fault} on {target}") as progress:
            chaos.hold_then_revert(lab, [f for f in faults if f.revert], seconds, progress)  # type: ignore[arg-type]
        console.out.print(f"reverted after {seconds:.0f}s")


@click.command()
@as_option
@click.argument("lab")
def heal(lab: str) -> None:
    """Revert every fault still active in a lab, remove every rule and qdisc labctl added, and
    start the lab's containers that are down."""
    from labctl import console
    from labctl.experiments import chaos

    healed = chaos.heal_lab(lab)
    console.out.print(f"{lab}: reverted {len(healed.faults)} fault(s)"
                      + "".join(f"\n  {f.fault} {f.target}" for f in healed.faults))
    if healed.started:
        console.out.print(f"{lab}: started {', '.join(healed.started)} (exited)")


COMMANDS: list[click.Command] = [chaos_cmd, heal]
