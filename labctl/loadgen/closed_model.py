"""labctl's default load: every user sends GET LABCTL_PATH back to back (a closed model)."""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

PATH = os.environ.get("LABCTL_PATH", "/")


class LabUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def get_path(self) -> None:
        self.client.get(PATH)
