"""An open model: requests arrive at a constant rate whatever the lab's latency.

User j of U (in each Locust process) sends request k at start + (k*U + j) / rate. A user
that falls behind sends at once, back to back, and each request's latency is measured
from when it was due, so a stall shows up as latency instead of as fewer requests
(coordinated omission). At most U requests per process can be in flight: when the lab
stalls for longer than U / rate seconds, the due times are still honoured but the
arrival burst after the stall is limited to U concurrent requests.
"""

from __future__ import annotations

import itertools
import os
import time

import gevent
from locust import FastHttpUser, constant, task

PATH = os.environ.get("LABCTL_PATH", "/")
RATE = float(os.environ.get("LABCTL_RATE", "100")) / max(1, int(os.environ.get("LABCTL_PROCESSES", "1")))
_user_index = itertools.count()
_start: list[float] = []


class OpenModelUser(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        if not _start:
            _start.append(time.time() + 0.5)
        self.index = next(_user_index)
        self.sent = 0
        self.users = max(1, int(os.environ.get("LABCTL_USERS_PER_PROCESS", "1")))

    @task
    def due_request(self) -> None:
        due = _start[0] + (self.sent * self.users + self.index) / RATE
        self.sent += 1
        delay = due - time.time()
        if delay > 0:
            gevent.sleep(delay)
        self.client.get(PATH, context={"due": due})
