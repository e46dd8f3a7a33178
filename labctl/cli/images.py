"""`labctl images ...`: build and list the images labs run on."""

from __future__ import annotations

import click


@click.group("images")
def images_group() -> None:
    """Build and list the images labs run on."""


@images_group.command("build")
@click.argument("roles", nargs=-1)
@click.option("--profile", type=click.Choice(["upstream", "local"]), default="local", show_default=True)
@click.option("--force", is_flag=True, help="Rebuild even when the inputs are unchanged.")
def images_build(roles: tuple[str, ...], profile: str, force: bool) -> None:
    """Build a profile's images (all roles, or the ROLES given); up-to-date ones are skipped."""
    from labctl import console, images

    with console.progress(f"images ({profile})") as progress:
        results = images.build_images(profile, roles or None, force=force, on_event=progress)  # type: ignore[arg-type]
    console.out.print(console.build_table(results))


@images_group.command("list")
def images_list() -> None:
    """Show every role's image in both profiles: present, up to date, size."""
    from labctl import console, images

    console.out.print(console.image_table(images.list_images()))


COMMANDS: list[click.Command] = [images_group]
