"""The native objects of one hub, made from its config, and the hub's state.

One owner for each: the runtime creates the ``Hub`` (channels, history, fan-out), the
``ConnectionManager`` (sessions, tabs, limits) and the session store at start, and closes
them at shutdown; a restarted hub gets new ones.
"""

from __future__ import annotations

import time
from typing import Literal

from sessionstream._core import ClosedError, ConnectionManager, Hub, SessionStore, UnavailableError
from sessionstream.config import StreamConfig
from sessionstream.redis_backend import RedisBackend, hub_sequencing, session_store

HubState = Literal["stopped", "running", "draining"]


class HubRuntime:
    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.state: HubState = "stopped"
        # Resumes may block (a replay source seeks Kafka): then opens run off the loop.
        self.blocking_resume = False
        self.hub: Hub | None = None
        self.manager: ConnectionManager | None = None
        self.store: SessionStore | None = None
        self.redis: RedisBackend | None = None
        self.started_at = time.time()
        self.create()

    @property
    def closed(self) -> bool:
        return self.hub is None or self.hub.closed

    def create(self) -> None:
        cfg = self.config
        self.hub = Hub(
            history_max_events=cfg.history_max_events,
            history_max_age=cfg.history_max_age,
            max_event_bytes=cfg.max_event_bytes,
            sequencing=hub_sequencing(cfg),
            max_channels_per_connection=cfg.max_channels_per_connection,
        )
        self.manager = ConnectionManager(
            self.hub,
            max_connections=cfg.max_connections,
            max_per_ip=cfg.max_per_ip,
            max_per_session=cfg.max_per_session,
            policy=cfg.policy,
        )
        self.store = session_store(cfg)
        if cfg.redis_url is not None:
            self.redis = RedisBackend(cfg, self.hub, self.store)
            # A resume may read the stream or wait for this node to catch up with it.
            self.blocking_resume = self.blocking_resume or self.redis.bus is not None
        self.started_at = time.time()

    def require_hub(self) -> Hub:
        if self.hub is None:
            raise ClosedError("the stream hub is shut down")
        return self.hub

    def require_manager(self) -> ConnectionManager:
        if self.manager is None:
            raise ClosedError("the stream hub is shut down")
        return self.manager

    def require_store(self) -> SessionStore:
        if self.store is None:
            raise ClosedError("the stream hub is shut down")
        return self.store

    def refuse_while_draining(self) -> None:
        # Every connection already has its shutdown frame and the history ends with this
        # process: an event accepted now would be acknowledged and then lost.
        if self.state == "draining":
            raise UnavailableError(
                "the stream hub is draining for shutdown: the event was not published;"
                " publish it again once a running node serves the stream"
            )

    def close(self) -> None:
        if self.redis is not None:
            self.redis.stop()
            self.redis.log_notes()
            self.redis = None
        if self.hub is not None:
            self.hub.close()
        self.hub = None
        self.manager = None
        self.store = None
        self.state = "stopped"
