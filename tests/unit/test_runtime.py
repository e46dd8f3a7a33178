"""The runtime seam without an engine: the local runtime satisfies the protocol, and the SDK's
refusals come out as labctl's errors."""

from __future__ import annotations

import docker.errors
import pytest

from labctl.errors import ContainerGoneError, EngineError
from labctl.runtime import local_runtime
from labctl.runtime.local import LocalCompose, engine_call


def test_local_runtime_is_the_compose_one() -> None:
    assert isinstance(local_runtime(), LocalCompose) and local_runtime() is local_runtime()


def test_a_missing_container_is_container_gone() -> None:
    with pytest.raises(ContainerGoneError, match=r"^kill x: No such container: x$"), engine_call("kill x"):
        raise docker.errors.NotFound("404", explanation="No such container: x")


def test_other_refusals_are_engine_errors_with_the_explanation() -> None:
    with pytest.raises(EngineError, match=r"^pause x: Container x is not running$") as caught, engine_call("pause x"):
        raise docker.errors.APIError("409", explanation="Container x is not running")
    assert not isinstance(caught.value, ContainerGoneError)


def test_a_helper_that_failed_says_its_exit_and_stderr() -> None:
    error = docker.errors.ContainerError("c", 2, ["iptables"], "img", b"iptables: Bad rule\n")
    with pytest.raises(EngineError, match=r"^iptables in x: exit 2: iptables: Bad rule$"), engine_call("iptables in x"):
        raise error
