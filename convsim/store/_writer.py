"""The store's single writer: many producers, one task that talks to SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._sqlite import SQLiteStore, StoreItem

DEFAULT_BATCH = 256
"""Most records written in one transaction."""


@asynccontextmanager
async def store_writer(
    store: SQLiteStore, *, batch_size: int = DEFAULT_BATCH, buffer: int = 1024
) -> AsyncIterator[MemoryObjectSendStream[StoreItem]]:
    """Yield a send stream; everything sent is written to ``store`` by one task.

    Producers ``await send.send(item)`` (or use ``send.clone()`` per task). Writes are
    batched into transactions; a full buffer applies back-pressure instead of growing
    memory. Leaving the context flushes every pending record.
    """
    send, receive = anyio.create_memory_object_stream[StoreItem](max_buffer_size=buffer)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_drain, store, receive, batch_size)
        async with send:
            yield send


async def _drain(
    store: SQLiteStore, receive: MemoryObjectReceiveStream[StoreItem], batch_size: int
) -> None:
    async with receive:
        while True:
            try:
                first = await receive.receive()
            except anyio.EndOfStream:
                return
            batch = [first]
            while len(batch) < batch_size:
                try:
                    batch.append(receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            # Commits can block on fsync; a worker thread keeps the event loop free for
            # the conversations that are still running.
            await anyio.to_thread.run_sync(store.write_batch, batch)
