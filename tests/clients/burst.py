#!/usr/bin/env python3
"""Connection burst: opens N TCP connections to HOST:PORT at the same moment (asyncio), holds
them for a while, and prints one JSON line: how many connected, how many took longer than
0.9 s (a SYN that found the listen queue full is retried after one second), and the slowest.

Usage: burst.py HOST PORT N [HOLD_SECONDS]"""

import asyncio
import json
import sys
import time


async def connect(host, port, times):
    start = time.monotonic()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except (OSError, asyncio.TimeoutError):
        times.append(None)
        return None
    times.append(time.monotonic() - start)
    return writer


async def main(host, port, n, hold):
    times = []
    writers = await asyncio.gather(*(connect(host, port, times) for _ in range(n)))
    await asyncio.sleep(hold)
    for w in writers:
        if w is not None:
            w.close()
    ok = [t for t in times if t is not None]
    print(json.dumps({
        "connections": n,
        "connected": len(ok),
        "slow": sum(1 for t in ok if t > 0.9),
        "max_ms": round(max(ok) * 1000, 1) if ok else None,
    }))


if __name__ == "__main__":
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    asyncio.run(main(host, port, n, float(sys.argv[4]) if len(sys.argv) > 4 else 1.0))
