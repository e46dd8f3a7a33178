"""The images labs run on, in two profiles with one contract, and how they are built.

`upstream` uses the official images (the app is built on python:3.12-slim, the db nodes on
mysql:8.4 and mariadb:11.4 with labctl's health agent added); `local`
builds every image here from Debian packages on a debootstrap base, for machines that
cannot reach an image registry.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from labctl import paths
from labctl.errors import ImageError, UsageError
from labctl.process import run
from labctl.runtime.images_build import ImageRecord, build_image, find_image, import_rootfs, pull_image

PROFILES = ("upstream", "local")
ROLES = ("app", "nginx", "haproxy", "mysql", "mariadb", "nettools", "dns", "etcd", "redis", "postgres",
         "keepalived")
BASE_IMAGE = "labctl/base:trixie"
BASE_SUITE = "trixie"
INPUTS_LABEL = "io.labctl.inputs"
# An image's own label, naming its role. Every container inherits its image's labels, so an
# image carries none that ownership reads (io.labctl.managed, io.labctl.lab): a container
# started by hand from it is not a lab's. Images built before kept io.labctl.managed; the
# inventory does not trust it alone.
IMAGE_LABEL = "io.labctl.image"
# The build context folder under images/ of each role (mysql and mariadb share one).
CONTEXTS = {
    "app": "app", "nginx": "nginx", "haproxy": "haproxy", "mysql": "db", "mariadb": "db", "nettools": "nettools",
    "dns": "dns", "etcd": "etcd", "redis": "redis", "postgres": "postgres", "keepalived": "keepalived",
}
# Roles whose official image runs as it is in the upstream profile.
UPSTREAM = {
    "nginx": "nginx:1.26",
    "haproxy": "haproxy:3.0",
    "nettools": "debian:trixie-slim",
    # Every setting goes on redis-server's command line, so the official image runs unchanged.
    "redis": "redis:8.0",
}
APP_UPSTREAM_BASE = "python:3.12-slim"
# Roles built here in both profiles, upstream on top of an official image: the app and dns have
# none of their own (dns is BIND plus labctl's in-lab client, which needs Python beside it), etcd's
# is not on Docker Hub, and
# the db nodes add the health agent HAProxy's writer check asks to the official server image.
UPSTREAM_BASES = {
    "app": APP_UPSTREAM_BASE,
    "dns": APP_UPSTREAM_BASE,
    "mysql": "mysql:8.4",
    "mariadb": "mariadb:11.4",
    # The official etcd image is on quay.io, not Docker Hub: upstream installs Debian's etcd on
    # Debian's official image instead.
    "etcd": "debian:trixie-slim",
    # Patroni has no official image: the same Debian packages on Debian's official image.
    "postgres": "debian:trixie-slim",
    # No official image runs HAProxy and keepalived together.
    "keepalived": "debian:trixie-slim",
}
BUILT_IN_BOTH = tuple(UPSTREAM_BASES)
# What the local profile runs in each role's place (versions as Debian shipped them when written;
# MySQL comes from unstable, the only suite that has it, so its major version moves).
LOCAL_BUILDS = {
    "app": "the sample app on Debian trixie's Python 3.13 (upstream: python:3.12-slim)",
    "dns": "BIND 9.20 and Python 3.13 from Debian trixie (upstream: python:3.12-slim)",
    "mysql": "MySQL from Debian unstable, a 9.x release (upstream: MySQL 8.4)",
    "mariadb": "MariaDB 11.8 with Galera 4, Spider and mariadb-backup from Debian trixie (upstream: MariaDB 11.4)",
    "nginx": "Nginx 1.26 from Debian trixie (upstream: nginx:1.26)",
    "haproxy": "HAProxy 3.0 from Debian trixie (upstream: haproxy:3.0)",
    "nettools": "Debian trixie with its network tools (upstream: debian:trixie-slim)",
    "etcd": "etcd 3.5 from Debian trixie (upstream: the same packages on debian:trixie-slim)",
    "redis": "Redis 8.0 from Debian trixie (upstream: redis:8.0)",
    "postgres": "PostgreSQL 17 and Patroni 4.0 from Debian trixie (upstream: the same packages on debian:trixie-slim)",
    "keepalived": "HAProxy 3.0 and keepalived 2.3 from Debian trixie (upstream: the same packages on "
                  "debian:trixie-slim)",
}

Events = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class BuildResult:
    """One image after `build_images`: built now, or skipped as already up to date."""

    role: str
    ref: str
    action: str  # "built", "up to date", "pulled", "present"
    seconds: float


@dataclass(frozen=True)
class ImageInfo:
    """One image of a profile as `images list` shows it."""

    role: str
    profile: str
    ref: str
    present: bool
    up_to_date: bool
    size_mb: float
    created: str


def check_profile(profile: str) -> str:
    """The profile name, or a usage error naming the profiles there are."""
    if profile not in PROFILES:
        raise UsageError(f"unknown image profile '{profile}' (profiles: {', '.join(PROFILES)})")
    return profile


def image_ref(role: str, profile: str) -> str:
    """The image a role runs on in a profile."""
    check_profile(profile)
    if role not in ROLES:
        raise UsageError(f"unknown image role '{role}' (roles: {', '.join(ROLES)})")
    if profile == "upstream" and role not in BUILT_IN_BOTH:
        return UPSTREAM[role]
    return f"labctl/{role}:{profile}"


def _is_built_here(role: str, profile: str) -> bool:
    return profile == "local" or role in BUILT_IN_BOTH


def dockerfile(role: str, profile: str) -> Path:
    """The Dockerfile that builds a role's image in a profile."""
    return paths.images_dir() / CONTEXTS[role] / f"Dockerfile.{role}.{profile}"


def inputs_digest(role: str, profile: str, base_id: str) -> str:
    """A digest of everything an image is built from: its context, Dockerfile and base image."""
    # The mirror is left out on purpose: the same packages from another mirror are the same image.
    digest = hashlib.sha256(f"{role}\0{profile}\0{base_id}\0".encode())
    context = paths.images_dir() / CONTEXTS[role]
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        if path.name.startswith("Dockerfile.") and path != dockerfile(role, profile):
            continue
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (never a hard-coded host when it has one)."""
    override = os.environ.get("LABCTL_DEBIAN_MIRROR")
    if override:
        return override
    if shutil.which("apt-get"):
        result = run(["apt-get", "indextargets", "--format", "$(REPO_URI)"], check=False)
        for uri in result.stdout.split():
            if "-security" not in uri and uri.rstrip("/").endswith("/debian"):
                return uri
    return "http://deb.debian.org/debian/"


def image_present(ref: str) -> bool:
    """True when the image is in the local engine."""
    return find_image(ref) is not None


def upstream_base(role: str) -> str:
    """The official image a role's upstream image is, or is built on."""
    return UPSTREAM_BASES.get(role) or UPSTREAM[role]


def _upstream_needs(roles: Iterable[str]) -> list[str]:
    return sorted({upstream_base(r) for r in roles})


def resolve_profile(requested: str | None, roles: Sequence[str],
                    blocks: Mapping[str, Sequence[str]] | None = None) -> tuple[str, str]:
    """(profile, reason): the requested one, else upstream when its images are here or pullable;
    `blocks` (role -> the lab's blocks on it) lets the reason say what each block runs instead."""
    if requested:
        return check_profile(requested), "asked for with --profile"
    for ref in _upstream_needs(roles):
        if find_image(ref) is None and not pull_image(ref):
            return "local", (f"{ref} is not here and cannot be pulled; built from Debian "
                             f"packages instead: {local_instead(blocks or {role: [role] for role in roles})}")
    return "upstream", "official images are available"


def local_instead(blocks: Mapping[str, Sequence[str]]) -> str:
    """What the local profile runs, block by block: `db: MySQL from Debian unstable, ...`."""
    return "; ".join(f"{', '.join(names)}: {LOCAL_BUILDS[role]}" for role, names in sorted(blocks.items()))


def ensure_images(profile: str, roles: Sequence[str], on_event: Events | None = None) -> list[BuildResult]:
    """Make sure every image the roles need exists and is up to date in this profile."""
    return build_images(profile, roles, on_event=on_event)


def build_images(
    profile: str, roles: Sequence[str] | None = None, *, force: bool = False, on_event: Events | None = None
) -> list[BuildResult]:
    """Build (or pull) the images of a profile, skipping those already built from the same inputs."""
    check_profile(profile)
    events = on_event or _quiet
    wanted = list(roles or ROLES)
    for role in wanted:
        image_ref(role, profile)
    results = []
    if profile == "local":
        results.append(ensure_base(force=force, on_event=events))
    for role in wanted:
        results.append(_ensure_role(role, profile, force, events))
    return results


def _ensure_role(role: str, profile: str, force: bool, events: Events) -> BuildResult:
    import time

    started = time.monotonic()
    ref = image_ref(role, profile)
    if not _is_built_here(role, profile):
        if find_image(ref) is not None:
            return BuildResult(role, ref, "present", 0.0)
        events(f"pulling {ref}")
        if not pull_image(ref):
            raise ImageError(f"cannot pull {ref}; use the local profile instead (--profile local)")
        return BuildResult(role, ref, "pulled", time.monotonic() - started)
    base_ref = BASE_IMAGE if profile == "local" else upstream_base(role)
    base = find_image(base_ref)
    if base is None and profile == "upstream":
        if not pull_image(base_ref):
            raise ImageError(f"cannot pull {base_ref} for the {role} image; use --profile local")
        base = find_image(base_ref)
    digest = inputs_digest(role, profile, base.id if base else "")
    current = find_image(ref)
    if not force and current is not None and current.labels.get(INPUTS_LABEL) == digest:
        return BuildResult(role, ref, "up to date", 0.0)
    _docker_build(role, profile, ref, digest, events)
    return BuildResult(role, ref, "built", time.monotonic() - started)


def _docker_build(role: str, profile: str, ref: str, digest: str, events: Events) -> None:
    context = paths.images_dir() / CONTEXTS[role]
    events(f"building {ref}")
    log: list[str] = []
    stream = build_image(context, dockerfile(role, profile).name, ref, {"DEBIAN_MIRROR": debian_mirror()},
                         {IMAGE_LABEL: role, INPUTS_LABEL: digest})
    for chunk in stream:
        if "error" in chunk:
            tail = "\n".join(log[-25:])
            raise ImageError(f"building {ref} failed: {chunk['error'].strip()}\nlast build output:\n{tail}")
        line = str(chunk.get("stream", "")).strip()
        if line:
            log.append(line)
            if line.startswith("Step "):
                events(f"building {ref}: {line[:100]}")


def ensure_base(force: bool = False, on_event: Events | None = None) -> BuildResult:
    """The debootstrap base image of the local profile; built once, then reused."""
    import time

    events = on_event or _quiet
    started = time.monotonic()
    digest = hashlib.sha256(f"{BASE_SUITE}\0minbase".encode()).hexdigest()[:16]
    current = find_image(BASE_IMAGE)
    if not force and current is not None and current.labels.get(INPUTS_LABEL) == digest:
        return BuildResult("base", BASE_IMAGE, "up to date", 0.0)
    _require_debootstrap()
    with tempfile.TemporaryDirectory(prefix="labctl-rootfs-") as rootfs:
        events(f"debootstrap {BASE_SUITE} (about 30 s)")
        run(["debootstrap", "--variant=minbase", BASE_SUITE, rootfs, debian_mirror()], timeout=1800)
        events(f"importing {BASE_IMAGE}")
        _import_rootfs(Path(rootfs), digest)
    return BuildResult("base", BASE_IMAGE, "built", time.monotonic() - started)


def _require_debootstrap() -> None:
    if shutil.which("debootstrap") is None:
        raise ImageError("the local profile needs debootstrap: sudo apt-get install debootstrap "
                         "(or run 'sudo bash scripts/setup-host.sh')")
    if os.geteuid() != 0:
        raise ImageError("debootstrap needs root to build the local base image: run 'sudo labctl images build'")


def _import_rootfs(rootfs: Path, digest: str) -> None:
    import_rootfs(rootfs, BASE_IMAGE, [f"LABEL {IMAGE_LABEL}=base {INPUTS_LABEL}={digest}", 'CMD ["bash"]'])


def list_images() -> list[ImageInfo]:
    """Every role's image in both profiles, present or not."""
    base = find_image(BASE_IMAGE)
    infos = []
    for profile in PROFILES:
        for role in ROLES:
            infos.append(_info(role, profile, base))
    return infos


def _info(role: str, profile: str, local_base: ImageRecord | None) -> ImageInfo:
    ref = image_ref(role, profile)
    image = find_image(ref)
    if image is None:
        return ImageInfo(role, profile, ref, False, False, 0.0, "")
    up_to_date = True
    if _is_built_here(role, profile):
        base = local_base if profile == "local" else find_image(upstream_base(role))
        up_to_date = image.labels.get(INPUTS_LABEL) == inputs_digest(role, profile, base.id if base else "")
    return ImageInfo(role, profile, ref, True, up_to_date, round(image.size / 1e6, 1), image.created[:19])
