"""Events a drill fires, which block kinds subscribe to (in the style of Locust's event hooks):
the runner itself knows nothing about databases or any other kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[..., None]
StepHandler = Callable[[dict[str, Any]], None]


class EventHook:
    """A list of handlers called in order with the event's keyword arguments."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def add_listener(self, handler: Handler) -> Handler:
        """Subscribe; returns the handler, so it can be used as a decorator."""
        self._handlers.append(handler)
        return handler

    @property
    def has_listeners(self) -> bool:
        return bool(self._handlers)

    def fire(self, **kwargs: Any) -> None:
        for handler in list(self._handlers):
            handler(**kwargs)


@dataclass
class DrillEvents:
    """The events of one drill run, in the order they fire.

    - `drill_started()`: the main run begins (its load is about to start);
    - `fault_applied(fault=dict)`: a step injected a fault (at, fault, target, id);
    - `load_finished()`: the main load ended or was interrupted (always fired);
    - `healing()`: a heal step is about to revert the faults (a fault's `reverted_at` is when its
      revert finished, and reverting a partition's rules takes a second or two);
    - `healed(run_dir=Path, faults=list, results=dict)`: every fault is reverted; handlers add
      what they measured to `results` (it joins the drill's measurements and its report);
    - `lab_up_again(results=dict)`: the lab is healthy again, before the steady state after.
    Step kinds other than faults (`failover: now`) go to the handler registered for their key.
    """

    drill_started: EventHook = field(default_factory=EventHook)
    fault_applied: EventHook = field(default_factory=EventHook)
    load_finished: EventHook = field(default_factory=EventHook)
    healing: EventHook = field(default_factory=EventHook)
    healed: EventHook = field(default_factory=EventHook)
    lab_up_again: EventHook = field(default_factory=EventHook)
    step_handlers: dict[str, StepHandler] = field(default_factory=dict)

    def handles_step(self, step: dict[str, Any]) -> StepHandler | None:
        """The handler of a non-fault step, if a kind registered one for one of its keys."""
        return next((handler for key, handler in self.step_handlers.items() if key in step), None)

