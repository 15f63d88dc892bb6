#!/usr/bin/env python3
"""A TCP proxy on loopback that delays every byte by a fixed time each way,
so a registry on the same machine answers as one across a network would
(round trips cost `2 × delay`; bandwidth is not limited). benches/compare.py
puts it in front of the loopback docker-registry for the "over N ms RTT"
cases.

usage: latency_proxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT DELAY_MS
"""

import asyncio
import sys
import time


async def pump(reader, writer, delay):
    """Copies `reader` to `writer`, each chunk `delay` seconds after it was
    read, in order; a separate task writes so reading never waits."""
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    delivering = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(256 * 1024)
            queue.put_nowait((time.monotonic() + delay, data or None))
            if not data:
                break
        await delivering
    except (ConnectionError, asyncio.IncompleteReadError):
        delivering.cancel()
    finally:
        writer.close()


async def main(listen_port, target, delay):
    host, port = target.rsplit(":", 1)

    async def connection(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pump(client_reader, upstream_writer, delay),
            pump(upstream_reader, client_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(connection, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]) / 1000))
