"""Test doubles shared by several test packages."""

from __future__ import annotations

import asyncio


class FakeSleep:
    """Records backoff delays instead of waiting them."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)
