"""Every fault this kernel supports, on a real lab: inject, see the effect, revert, see it gone."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from labctl.doctor import supported_faults
from labctl.experiments import chaos
from labctl.runtime.dockerenv import docker_client
from tests.integration.conftest import Cli

APP2 = "labctl-lb-haproxy-app-2"


def direct(container: str, path: str = "/", timeout: float = 3) -> int:
    """Status of a request to one app container from inside the lab's network."""
    script = (f"import urllib.request,urllib.error\ntry: print(urllib.request.urlopen('http://{container}:8000{path}',"
              f" timeout={timeout}).status)\nexcept urllib.error.HTTPError as e: print(e.code)\n"
              "except Exception as e: print(0)")
    result = docker_client().containers.get("labctl-lb-haproxy-app-1").exec_run(["python3", "-c", script])
    return int(result.output.decode().strip().splitlines()[-1])


def state(container: str) -> str:
    target = docker_client().containers.get(container)
    return str(target.status)


@pytest.fixture()
def lab(cli: Cli) -> Cli:
    cli.ok("up", "lb-haproxy")
    return cli


def test_kill_and_heal(lab: Cli) -> None:
    out = lab.ok("chaos", "lb-haproxy", "kill", "app.2")
    assert "kill app-2" in out and state(APP2) == "exited"
    healed = lab.ok("heal", "lb-haproxy")
    assert "reverted 1 fault" in healed and state(APP2) == "running"
    journal = (lab.home / "runs" / "lb-haproxy" / "chaos.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in journal] == ["inject", "revert"]


def test_stop_start_restart_pause_unpause(lab: Cli) -> None:
    lab.ok("chaos", "lb-haproxy", "stop", "app.2")
    assert state(APP2) == "exited"
    lab.ok("chaos", "lb-haproxy", "start", "app.2")
    assert state(APP2) == "running"
    lab.ok("chaos", "lb-haproxy", "pause", "app.2")
    assert state(APP2) == "paused"
    lab.ok("chaos", "lb-haproxy", "unpause", "app.2")
    assert state(APP2) == "running"
    lab.ok("chaos", "lb-haproxy", "restart", "app.2")
    assert state(APP2) == "running"
    assert lab.active_faults("lb-haproxy") == []


def test_up_on_a_paused_lab_says_to_heal_first(lab: Cli) -> None:
    lab.ok("chaos", "lb-haproxy", "pause", "app.2")
    refused = lab.run("up", "lb-haproxy")
    assert refused.returncode == 1 and "app-2 of lab 'lb-haproxy' is paused" in refused.stderr
    assert "labctl heal lb-haproxy" in refused.stderr and state(APP2) == "paused"
    lab.ok("heal", "lb-haproxy")
    lab.ok("up", "lb-haproxy")
    assert state(APP2) == "running"


def test_pause_with_duration_reverts_itself(lab: Cli) -> None:
    began = time.monotonic()
    lab.ok("chaos", "lb-haproxy", "pause", "app.2", "--duration", "2s")
    assert time.monotonic() - began >= 2 and state(APP2) == "running"


def test_app_switches_slow_and_fail(lab: Cli) -> None:
    lab.ok("chaos", "lb-haproxy", "fail", "app.2", "--percent", "100")
    assert direct("app-2") == 500
    lab.ok("chaos", "lb-haproxy", "slow", "app.2", "--ms", "700")
    began = time.monotonic()
    direct("app-3")
    fast = time.monotonic() - began
    lab.ok("heal", "lb-haproxy")
    assert direct("app-2") == 200
    assert fast < 1.0


def test_partition_and_loss_leave_no_rules(lab: Cli) -> None:
    lab.ok("chaos", "lb-haproxy", "partition", "app.2")
    assert direct("app-2", timeout=2) == 0  # cut off from the rest of the lab
    assert "labctl" in chaos.network_leftovers(APP2)
    lab.ok("heal", "lb-haproxy")
    assert direct("app-2") == 200 and chaos.network_leftovers(APP2) == ""
    lab.ok("chaos", "lb-haproxy", "loss", "app.2", "--percent", "100")
    assert direct("app-2", timeout=2) == 0
    lab.ok("heal", "lb-haproxy")
    assert direct("app-2") == 200 and chaos.network_leftovers(APP2) == ""


def test_bandwidth_qdisc_is_removed(lab: Cli) -> None:
    lab.ok("chaos", "lb-haproxy", "bandwidth", "app.2", "--rate", "1mbit")
    assert "tbf" in chaos.network_leftovers(APP2)
    lab.ok("heal", "lb-haproxy")
    assert chaos.network_leftovers(APP2) == ""


def test_latency_without_netem_is_a_clear_error(lab: Cli) -> None:
    result = lab.run("chaos", "lb-haproxy", "latency", "app.2", "--ms", "100")
    if supported_faults()["netem"]:
        assert result.returncode == 0
        lab.ok("heal", "lb-haproxy")
    else:
        assert result.returncode == 1 and "slow --ms N" in result.stderr
    assert chaos.network_leftovers(APP2) == ""


def test_cpu_hog_is_stopped_by_heal(lab: Cli) -> None:
    lab.ok("chaos", "lb-haproxy", "cpu-hog", "app.2")
    time.sleep(1)
    cpu = docker_client().containers.get(APP2).stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"]
    time.sleep(1)
    later = docker_client().containers.get(APP2).stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"]
    assert later - cpu > 2e8  # more than 0.2 s of CPU in about a second
    lab.ok("heal", "lb-haproxy")
    top = docker_client().containers.get(APP2).top()["Processes"]
    assert not any("while" in " ".join(p) for p in top)


def test_heal_after_labctl_was_killed(lab: Cli) -> None:
    process = subprocess.Popen([*lab.argv(), "chaos", "lb-haproxy", "pause", "app.2", "--duration", "60s"],
                               env=lab.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while state(APP2) != "paused" and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state(APP2) == "paused"
    lab.ok("heal", "lb-haproxy")
    assert state(APP2) == "running"


def test_unknown_target_lists_the_valid_ones(lab: Cli) -> None:
    result = lab.run("chaos", "lb-haproxy", "kill", "app.9")
    assert result.returncode == 2
    assert "no target 'app.9'" in result.stderr and "app.2" in result.stderr and "random:app" in result.stderr
    assert state(APP2) == "running"


def test_random_target_hits_one_replica(lab: Cli) -> None:
    out = lab.ok("chaos", "lb-haproxy", "pause", "random:app")
    paused = [c for c in ("app-1", "app-2", "app-3") if state(f"labctl-lb-haproxy-{c}") == "paused"]
    assert len(paused) == 1 and paused[0] in out
    lab.ok("heal", "lb-haproxy")


def test_load_balancer_keeps_serving_during_a_kill(lab: Cli) -> None:
    lab.ok("chaos", "lb-haproxy", "kill", "app.2")
    time.sleep(3)  # two failed checks at 1 s
    codes = []
    for _ in range(12):
        try:
            with urllib.request.urlopen("http://127.0.0.1:8081/", timeout=5) as response:
                codes.append(response.status)
        except urllib.error.HTTPError as error:
            codes.append(error.code)
    assert codes == [200] * 12
