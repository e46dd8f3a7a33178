"""A WAN link between two sites, for a kernel without netem: forwards TCP ports to one target
in the other site, holding every chunk for half the link's round trip (plus jitter, never
reordering) and pacing each direction to the link's rate.

    python3 wanrelay.py --target db-1.site-a --ports 3306 --rtt-ms 20 --jitter-ms 2 --rate-mbit 0

The upstream connection itself is opened half a round trip late, so a server that speaks
first (MySQL's greeting) reaches the client one full round trip after it connected: a TCP
ping across the link measures its latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys

CHUNK = 65536


class DelayedPipe:
    """One direction of the link: chunks leave in order, each no earlier than its arrival plus
    the one-way delay, and no faster than the rate allows."""

    def __init__(self, one_way_s: float, jitter_s: float, rate_bps: float) -> None:
        self.one_way_s = one_way_s
        self.jitter_s = jitter_s
        self.rate_bps = rate_bps
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.last_release = 0.0

    def push(self, data: bytes) -> None:
        """Queue a chunk (b"" is the end of the stream) with the time it may leave."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.one_way_s + random.uniform(-self.jitter_s, self.jitter_s))
        release = max(loop.time() + delay, self.last_release)
        if self.rate_bps > 0:
            release += len(data) * 8 / self.rate_bps
        self.last_release = release
        self.queue.put_nowait((release, data))

    async def deliver(self, writer: asyncio.StreamWriter) -> None:
        """Write every queued chunk at its time, then end the far side's write half."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                release, data = await self.queue.get()
                wait = release - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, RuntimeError):
            # The far side is gone: nothing more of this direction can arrive.
            _close(writer)


async def _pump(reader: asyncio.StreamReader, pipe: DelayedPipe) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(CHUNK):
            pipe.push(data)
    pipe.push(b"")


async def _healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()
    _close(writer)


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.close()


class Link:
    """The relay's settings and the handler of one client connection."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.target = args.target
        self.one_way_s = args.rtt_ms / 2000
        self.jitter_s = args.jitter_ms / 2000
        self.rate_bps = args.rate_mbit * 1_000_000

    def pipe(self) -> DelayedPipe:
        return DelayedPipe(self.one_way_s, self.jitter_s, self.rate_bps)

    async def handle(self, port: int, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        outbound, inbound = self.pipe(), self.pipe()
        pumping = asyncio.ensure_future(_pump(client_reader, outbound))
        await asyncio.sleep(self.one_way_s)
        try:
            server_reader, server_writer = await asyncio.open_connection(self.target, port)
        except OSError as exc:
            print(f"wanrelay: {self.target}:{port} unreachable: {exc}", file=sys.stderr, flush=True)
            pumping.cancel()
            _close(client_writer)
            return
        try:
            await asyncio.gather(pumping, outbound.deliver(server_writer),
                                 _pump(server_reader, inbound), inbound.deliver(client_writer))
        finally:
            _close(server_writer)
            _close(client_writer)


async def serve(args: argparse.Namespace) -> None:
    link = Link(args)
    servers = []
    for port in args.ports:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int = port) -> None:
            await link.handle(port, reader, writer)
        servers.append(await asyncio.start_server(handler, args.bind, port))
    if args.health_port:
        servers.append(await asyncio.start_server(_healthy, args.bind, args.health_port))
    print(f"wanrelay: ports {','.join(map(str, args.ports))} -> {args.target}, round trip {args.rtt_ms} ms "
          f"(jitter {args.jitter_ms} ms), rate {args.rate_mbit or 'unlimited'} Mbit/s", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--ports", type=lambda text: [int(p) for p in text.split(",")], required=True)
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--rate-mbit", type=float, default=0.0)
    parser.add_argument("--health-port", type=int, default=0, help="answers HTTP 200 to anything (0: off)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(serve(parse_args(sys.argv[1:])))
