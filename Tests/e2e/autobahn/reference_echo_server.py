#!/usr/bin/env python3
"""A reference WebSocket echo server (the `websockets` library, with permessage-deflate),
to check the Autobahn toolchain itself, apart from Lunar:

    .venv/bin/python Tests/e2e/autobahn/reference_echo_server.py 9001 &
    .venv/bin/python Tests/e2e/autobahn/run.py --url ws://127.0.0.1:9001/wds
"""
import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except Exception:
        pass


async def main(port):
    async with serve(echo, "127.0.0.1", port, max_size=16 * 1024 * 1024,
                     compression="deflate") as server:
        print(f"reference echo server on ws://127.0.0.1:{port}/", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9001))
