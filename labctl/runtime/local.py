"""The local runtime: labs run by Docker Compose v2 on this machine's engine."""

from __future__ import annotations

import contextlib
import datetime
import math
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labctl.errors import ContainerGoneError, EngineError
from labctl.runtime import compose, inventory
from labctl.runtime.base import ExecResult, NetworkAddress, Removal, ServiceState
from labctl.runtime.dockerenv import docker_client, require_engine

# Every helper container carries this label (and is removed when its command ends).
HELPER_LABEL = {"io.labctl.chaos-helper": "1"}


@contextlib.contextmanager
def engine_call(what: str) -> Iterator[None]:
    """Turn the SDK's refusals into labctl's errors: ContainerGoneError for a container that
    is not there, EngineError (with the engine's explanation) for any other refusal."""
    import docker.errors

    try:
        yield
    except docker.errors.NotFound as exc:
        raise ContainerGoneError(f"{what}: {exc.explanation or exc}") from exc
    except docker.errors.ContainerError as exc:
        output = bytes(exc.stderr or b"").decode("utf-8", "replace").strip()
        raise EngineError(f"{what}: exit {exc.exit_status}: {output[-300:]}") from exc
    except docker.errors.APIError as exc:
        raise EngineError(f"{what}: {exc.explanation or exc}") from exc


class LocalCompose:
    """`Runtime` on the local Docker engine: Compose projects, containers found by label."""

    def require(self) -> None:
        """Fail early, with advice, unless both the engine and Compose v2 are there (cached)."""
        require_engine()

    def start_project(self, project: str, compose_file: Path) -> subprocess.Popen[str]:
        """`docker compose up -d` in the background; images must already be there."""
        return compose.start_up(project, compose_file)

    def run_services(self, project: str, compose_file: Path, services: list[str]) -> None:
        """Create and start only these services, leaving every other one as it is."""
        compose.run_services(project, compose_file, services)

    def remove_lab(self, lab: str | None) -> Removal:
        """Remove the containers, networks and volumes labctl created for one lab (or all)."""
        removal = Removal()
        containers = inventory.lab_containers(lab)
        with ThreadPoolExecutor(max_workers=8) as pool:
            # v=True takes the container's anonymous volumes (the official db images' datadir) with
            # it: they were made for this container alone; named volumes are left to the label sweep.
            list(pool.map(lambda c: c.remove(force=True, v=True), containers))
        removal.containers = sorted(c.name for c in containers)
        for network in inventory.lab_networks(lab):
            _remove_network(network, removal)
        for volume in inventory.lab_volumes(lab):
            volume.remove(force=True)
            removal.volumes.append(volume.name)
        return removal

    def has_objects(self, lab: str) -> bool:
        """True while a container or a network of the lab is still there."""
        return bool(inventory.lab_containers(lab) or inventory.lab_networks(lab))

    def containers(self, lab: str | None) -> list[ServiceState]:
        """The state of every container of a lab (or of every lab), sorted by container name."""
        return inventory.service_states(lab)

    def labs(self) -> list[str]:
        """Names of labs with at least one container, running or not."""
        return inventory.running_labs()

    def logs_command(self, project: str, compose_file: Path | None, service: str | None, tail: int,
                     follow: bool) -> list[str]:
        """`docker compose logs` for a lab (all services, or one)."""
        return compose.logs_argv(project, compose_file, service, tail, follow)

    def exec(self, container: str, argv: list[str], detach: bool = False) -> ExecResult:
        """`docker exec`: exit code and output (stdout and stderr); with detach, exit code 0."""
        with engine_call(f"exec in {container}"):
            result = _get(container).exec_run(argv, detach=detach)
        if detach:
            return ExecResult(0, "")
        return ExecResult(int(result.exit_code), bytes(result.output or b"").decode("utf-8", "replace"))

    def exec_command(self, container: str, argv: list[str], stdin: bool = False) -> list[str]:
        """`docker exec [-i] CONTAINER ARGV...`, for a subprocess that streams its output (and input)."""
        return ["docker", "exec", *(["-i"] if stdin else []), container, *argv]

    def exec_in_netns(self, container: str, argv: list[str], image: str) -> str:
        """A helper container of `image` in the target's network namespace, with NET_ADMIN."""
        what = f"{argv[0]} in {container}'s network namespace"
        with engine_call(what):
            helper = docker_client().containers.create(image, argv, network_mode=f"container:{container}",
                                                       cap_add=["NET_ADMIN"], labels=HELPER_LABEL)
            try:
                helper.start()
                exit_code = int(helper.wait()["StatusCode"])
                output = bytes(helper.logs(stdout=True, stderr=True)).decode("utf-8", "replace")
            finally:
                _remove_quietly(helper)
        if exit_code != 0:
            raise EngineError(f"{what}: exit {exit_code}: {output.strip()[-300:]}")
        return output

    def kill(self, container: str, signal: str | None = None) -> None:
        """`docker kill` (with a signal, when given)."""
        with engine_call(f"kill {container}"):
            _get(container).kill(**({"signal": signal} if signal else {}))

    def stop(self, container: str, timeout: float) -> None:
        """`docker stop -t TIMEOUT` (the engine takes whole seconds)."""
        with engine_call(f"stop {container}"):
            _get(container).stop(timeout=math.ceil(timeout))

    def start(self, container: str) -> None:
        """`docker start`."""
        with engine_call(f"start {container}"):
            _get(container).start()

    def restart(self, container: str, timeout: float) -> None:
        """`docker restart -t TIMEOUT`."""
        with engine_call(f"restart {container}"):
            _get(container).restart(timeout=math.ceil(timeout))

    def pause(self, container: str) -> None:
        """`docker pause`."""
        with engine_call(f"pause {container}"):
            _get(container).pause()

    def unpause(self, container: str) -> None:
        """`docker unpause`."""
        with engine_call(f"unpause {container}"):
            _get(container).unpause()

    def wait(self, container: str, timeout: float) -> int:
        """`docker wait`, bounded: the container's exit code."""
        with engine_call(f"wait for {container}"):
            return int(_get(container).wait(timeout=timeout)["StatusCode"])

    def remove_container(self, container: str) -> None:
        """`docker rm -f -v`."""
        with engine_call(f"remove {container}"):
            _get(container).remove(force=True, v=True)

    def state(self, container: str) -> str:
        """The container's status now."""
        with engine_call(f"inspect {container}"):
            return str(_get(container).status)

    def labels(self, container: str) -> dict[str, str]:
        """The container's labels."""
        with engine_call(f"inspect {container}"):
            return dict(_get(container).labels)

    def finished_at(self, container: str) -> float | None:
        """State.FinishedAt as epoch seconds."""
        with engine_call(f"inspect {container}"):
            text = str(_get(container).attrs["State"].get("FinishedAt") or "")
        return None if not text or text.startswith("0001-") else engine_time(text)

    def timestamped_logs(self, container: str, tail: int = 500) -> list[tuple[float, str]]:
        """`docker logs --timestamps --tail N`, each line split into its time and its text."""
        with engine_call(f"logs of {container}"):
            raw = bytes(_get(container).logs(timestamps=True, tail=tail))
        lines = []
        for line in raw.decode("utf-8", "replace").splitlines():
            stamp, _, text = line.partition(" ")
            lines.append((engine_time(stamp), text))
        return lines

    def address(self, container: str) -> NetworkAddress:
        """The container's address and gateway on its first network."""
        with engine_call(f"inspect {container}"):
            networks = _get(container).attrs["NetworkSettings"]["Networks"]
        network = next(iter(networks.values()))
        return NetworkAddress(f"{network['IPAddress']}/{network['IPPrefixLen']}", str(network["Gateway"]))

    def processes(self, container: str) -> list[tuple[str, str]]:
        """`docker top`: (PID, CMD) of each process."""
        with engine_call(f"top in {container}"):
            top = _get(container).top()
        pid, cmd = top["Titles"].index("PID"), top["Titles"].index("CMD")
        return [(str(row[pid]), str(row[cmd])) for row in top["Processes"]]

    def logs_tail(self, container: str, lines: int = 20) -> str:
        """The last lines a container wrote, for error messages."""
        return inventory.container_logs_tail(container, lines)


def engine_time(text: str) -> float:
    """An engine timestamp (RFC 3339 with nanoseconds, UTC) as epoch seconds, to the microsecond."""
    seconds, _, fraction = text.rstrip("Z").partition(".")
    stamp = datetime.datetime.fromisoformat(seconds).replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp() + float(f"0.{fraction[:6] or 0}")


def _get(container: str) -> Any:
    return docker_client().containers.get(container)


def _remove_network(network: Any, removal: Removal) -> None:
    import docker.errors

    try:
        network.remove()
        removal.networks.append(network.name)
    except docker.errors.APIError as exc:
        # A container labctl did not create is still attached: leave both alone.
        removal.kept.append(f"network {network.name}: {exc.explanation}")


def _remove_quietly(helper: Any) -> None:
    # SDK-side `remove=True` skips the removal when the wait is interrupted; this never does.
    import docker.errors

    with contextlib.suppress(docker.errors.APIError):
        helper.remove(force=True)
