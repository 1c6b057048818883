"""A TCP proxy in front of one database, for the soak's stalled-connection fault.

It forwards every connection to its target until it receives SIGUSR1: then every connection
open at that moment is frozen (it stays open and sends nothing, in either direction: a peer
behind a dead NAT entry or a hung load balancer), while new connections are forwarded as
usual. SIGUSR2 closes the frozen connections, as the network would once it gives up on them.

Standard library only, so that it runs in the plain Python base image:
``python3 proxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT``.
"""

from __future__ import annotations

import asyncio
import signal
import sys


class Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.writers = (client, upstream)
        self.forwarding = asyncio.Event()
        self.forwarding.set()

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.links: set[Link] = set()
        self.frozen: set[Link] = set()

    async def serve(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection(*self.target)
        except OSError as exc:
            log(f"upstream {self.target} unreachable: {exc}")
            client.close()
            return
        link = Link(client, upstream)
        self.links.add(link)
        try:
            await asyncio.gather(
                pump(client_reader, upstream, link), pump(upstream_reader, client, link)
            )
        finally:
            link.close()
            self.links.discard(link)
            self.frozen.discard(link)

    def freeze(self) -> None:
        for link in self.links - self.frozen:
            link.forwarding.clear()
            self.frozen.add(link)
        log(f"froze {len(self.frozen)} connection(s)")

    def release(self) -> None:
        log(f"closing {len(self.frozen)} frozen connection(s)")
        for link in list(self.frozen):
            link.close()


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link) -> None:
    """Copy one direction; a frozen link neither reads nor writes any more."""
    try:
        while True:
            await link.forwarding.wait()
            data = await reader.read(65536)
            if not data:
                break
            await link.forwarding.wait()
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        link.close()


def log(message: str) -> None:
    print(f"proxy: {message}", flush=True)


async def main(listen_port: int, target: str) -> None:
    host, _, port = target.rpartition(":")
    proxy = Proxy(host, int(port))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, proxy.freeze)
    loop.add_signal_handler(signal.SIGUSR2, proxy.release)
    loop.add_signal_handler(signal.SIGTERM, stop.set)  # PID 1 ignores it unless handled
    # Inside its container, reached over the compose networks only (no published port).
    server = await asyncio.start_server(proxy.serve, "0.0.0.0", listen_port)  # noqa: S104
    log(f"listening on {listen_port}, forwarding to {target}")
    async with server:
        await stop.wait()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: proxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT")
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
