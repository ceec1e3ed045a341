#!/usr/bin/python3
"""WebSocket client for the tunnel tests (python3-websockets).

client.py URL [--ca FILE] STEP...; steps, in order:
  send:TEXT   send TEXT, expect it echoed          -> "echo TEXT"
  big:N       send N random bytes both ways, check -> "big N ok"
  close       close from the client (1000)         -> "closed CODE"
  wait-close  send "close-me", wait for the close  -> "closed by server CODE REASON"
  idle:S      wait S seconds for the close         -> "closed by server CODE" or "still open"
A refused handshake prints "status NNN" and exits 3."""
import asyncio
import os
import ssl
import sys

import websockets


async def run(url, ca, steps):
    kw = {"max_size": None, "compression": None, "open_timeout": 10}
    if ca:
        kw["ssl"] = ssl.create_default_context(cafile=ca)
    try:
        ws = await websockets.connect(url, **kw)
    except websockets.exceptions.InvalidStatusCode as e:
        print("status", e.status_code, flush=True)
        return 3
    for step in steps:
        op, _, arg = step.partition(":")
        if op == "send":
            await ws.send(arg)
            got = await asyncio.wait_for(ws.recv(), 10)
            print("echo", got, flush=True)
        elif op == "big":
            data = os.urandom(int(arg))
            await ws.send(data)
            got = await asyncio.wait_for(ws.recv(), 60)
            print("big", len(got), "ok" if got == data else "MISMATCH", flush=True)
        elif op == "close":
            await ws.close()
            print("closed", ws.close_code, flush=True)
        elif op == "wait-close":
            await ws.send("close-me")
            await asyncio.wait_for(ws.wait_closed(), 10)
            print("closed by server", ws.close_code, ws.close_reason, flush=True)
        elif op == "idle":
            try:
                await asyncio.wait_for(ws.wait_closed(), float(arg))
                print("closed by server", ws.close_code, flush=True)
            except asyncio.TimeoutError:
                print("still open", flush=True)
    return 0


args = sys.argv[1:]
ca = None
if len(args) > 1 and args[1] == "--ca":
    ca = args[2]
    del args[1:3]
sys.exit(asyncio.run(run(args[0], ca, args[1:])))
