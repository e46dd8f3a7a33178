"""CPU-bound load for the scaling labs: each request burns about 10 ms of CPU in the app.

`labctl load --path /other` overrides the path."""

import os

from locust import FastHttpUser, constant, task

PATH = os.environ.get("LABCTL_PATH", "/")
PATH = "/work?ms=10" if PATH == "/" else PATH


class CpuBoundUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def work(self) -> None:
        self.client.get(PATH)
