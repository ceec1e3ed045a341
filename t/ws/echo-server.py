#!/usr/bin/python3
"""WebSocket echo server for the tunnel tests (python3-websockets).

echo-server.py PORT [LOG]: echoes every message; "close-me" makes the server
close the connection (1000, "bye"); "silence" is neither echoed nor answered.
Each handshake's path and headers go to LOG as one JSON line."""
import asyncio
import json
import sys

import websockets


async def main(port, log):
    async def handler(ws, path=None):
        if log:
            with open(log, "a") as f:
                f.write(json.dumps({"path": ws.path, "headers": {k.lower(): v for k, v in ws.request_headers.raw_items()}}) + "\n")
        async for msg in ws:
            if msg == "close-me":
                await ws.close(1000, "bye")
                return
            if msg == "silence":
                continue
            await ws.send(msg)

    async with websockets.serve(handler, "127.0.0.1", port, max_size=None, compression=None):
        await asyncio.Future()


asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None))
