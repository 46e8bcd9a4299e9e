"""Serving helper shared by the test function apps: aiohttp on loopback, port announced."""

import asyncio
import sys

from aiohttp import web


async def serve_forever(app: web.Application, port: int, name: str) -> None:
    """Listens on 127.0.0.1:port (0 = any free port) and prints the port actually bound as
    `<name>: serving on 127.0.0.1:<port>` on stderr, which the test harness waits for."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"{name}: serving on 127.0.0.1:{bound}", file=sys.stderr, flush=True)
    await asyncio.Event().wait()
