"""Ownership by the labels Compose and labctl's rendered file set, never by an image's."""

from __future__ import annotations

from labctl.runtime.inventory import label_filters, owned

COMPOSE = {"io.labctl.managed": "true", "io.labctl.lab": "lb-nginx", "io.labctl.role": "app",
           "com.docker.compose.project": "labctl-lb-nginx", "com.docker.compose.service": "app-1"}
OLD_IMAGE = {"io.labctl.managed": "true", "io.labctl.role": "app", "io.labctl.inputs": "beff3f2602171cc9"}
NEW_IMAGE = {"io.labctl.image": "app", "io.labctl.inputs": "beff3f2602171cc9"}


def test_what_compose_created_from_the_lab_file_is_the_labs() -> None:
    assert owned(COMPOSE) and owned(COMPOSE, "lb-nginx")
    assert not owned(COMPOSE, "lb-haproxy")


def test_image_labels_alone_own_nothing() -> None:
    assert not owned(OLD_IMAGE) and not owned(NEW_IMAGE) and not owned(None)
    # A hand-started container that copies a lab's labels, but was not made by Compose for it.
    assert not owned({**OLD_IMAGE, "io.labctl.lab": "lb-nginx"}, "lb-nginx")


def test_the_project_must_be_the_labs_own() -> None:
    assert not owned({**COMPOSE, "com.docker.compose.project": "scratch"})
    assert not owned({**COMPOSE, "com.docker.compose.project": "labctl-lb-haproxy"}, "lb-nginx")


def test_filters_ask_the_engine_for_the_lab_and_its_project() -> None:
    assert label_filters("lb-nginx") == {"label": [
        "io.labctl.managed=true", "io.labctl.lab=lb-nginx", "com.docker.compose.project=labctl-lb-nginx"]}
    assert label_filters(None) == {"label": ["io.labctl.managed=true", "io.labctl.lab", "com.docker.compose.project"]}
