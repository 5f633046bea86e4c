"""An amqtt topic plugin that takes its time over every PUBLISH: the broker's delivery falls behind."""

from __future__ import annotations

import asyncio
from typing import Any

from amqtt.plugins.base import BaseTopicPlugin  # type: ignore[import-untyped,unused-ignore]

DELAY = 0.02  # seconds per message checked: 50 messages a second at most


class SlowTopicCheck(BaseTopicPlugin):  # type: ignore[misc,unused-ignore]
    async def topic_filtering(self, *, session: Any = None, topic: Any = None, action: Any = None) -> bool:
        await asyncio.sleep(DELAY)
        return True
