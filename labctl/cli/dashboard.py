"""`labctl dashboard`: a running lab as a live page in the browser, on 127.0.0.1 only."""

from __future__ import annotations

import click

from labctl.cli.options import as_option


@click.command("dashboard")
@as_option
@click.argument("lab")
@click.option("--port", type=click.IntRange(0, 65535), default=8770, show_default=True,
              help="The port on 127.0.0.1 to serve on (0: any free one).")
def dashboard_cmd(lab: str, port: int) -> None:
    """Serve a live page of a running lab: its containers and health, each backend's requests per
    second in the load or drill running now, database roles and lag, the faults in effect, and
    the last 90 s as a timeline with faults marked. It updates every second; Ctrl-C stops it."""
    from labctl import console
    from labctl.dashboard import server
    from labctl.running import attach

    attach(lab).require_up()
    httpd = server.bind(lab, port)
    console.out.print(f"dashboard of {lab}: http://{server.HOST}:{httpd.server_address[1]}/ (Ctrl-C stops it)")
    server.serve(httpd)


COMMANDS = [dashboard_cmd]
