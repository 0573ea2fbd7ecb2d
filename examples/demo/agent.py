"""The demo's chat agent: local, deterministic, streams its reply token by token.

``Agent`` is the pluggable part: anything with ``reply(history, text)`` returning an async
iterator of text tokens. :class:`ScriptedAgent` needs no network and always answers the
same way, which the tests rely on. A real model goes in :class:`ModelAgent`.

Commands understood by the scripted agent (useful in the demo and in tests):

* ``/fail``: streams a few tokens, then raises :class:`AgentError`.
* ``/slow``: streams a longer reply, slowly, to leave time to open another tab.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict


class ChatMessage(TypedDict):
    role: str  # "user" or "assistant"
    text: str
    turn: str


class AgentError(Exception):
    """The agent could not produce a reply; the message is shown to the user."""


class Agent(Protocol):
    def reply(self, history: Sequence[ChatMessage], text: str) -> AsyncIterator[str]:
        """Yield the reply to ``text`` token by token; ``history`` holds earlier turns."""
        ...


@dataclass
class ScriptedAgent:
    """Answers from a script; ``token_delay`` seconds between tokens."""

    token_delay: float = 0.03
    slow_token_delay: float = 0.1

    async def reply(self, history: Sequence[ChatMessage], text: str) -> AsyncIterator[str]:
        turn = sum(1 for m in history if m["role"] == "user") + 1
        command = text.strip().split(maxsplit=1)[0] if text.strip() else ""
        if command == "/fail":
            for token in ("Let", " me", " think"):
                await asyncio.sleep(self.token_delay)
                yield token
            raise AgentError("the agent failed on purpose (/fail); nothing is stuck, try again")
        delay = self.token_delay
        words = [f"You said: {text.strip()!r}.", f"This is turn {turn} of our conversation."]
        if command == "/slow":
            delay = self.slow_token_delay
            words.append("I am answering slowly so that you can open another tab meanwhile;")
            words.append("the other tab is usable at once and this reply still completes.")
        else:
            words.append("I am a scripted agent: replace me with a real model in agent.py.")
        tokens = " ".join(words).split(" ")
        for index, token in enumerate(tokens):
            await asyncio.sleep(delay)
            yield token if index == 0 else " " + token


class ModelAgent:
    """Where a real model call goes.

    Stream the provider's response and yield its text deltas, for example::

        async def reply(self, history, text):
            messages = [{"role": m["role"], "content": m["text"]} for m in history]
            messages.append({"role": "user", "content": text})
            try:
                async for chunk in client.stream(messages):   # your SDK's streaming call
                    yield chunk.text
            except ProviderError as exc:
                raise AgentError(f"the model is unavailable: {exc}") from exc

    Raising :class:`AgentError` is enough for the user to see the error and for the
    conversation to stay usable; the demo never leaves a turn half-open.
    """

    async def reply(self, history: Sequence[ChatMessage], text: str) -> AsyncIterator[str]:
        raise AgentError("ModelAgent is a placeholder: connect it to a model first")
        yield ""  # pragma: no cover - makes this an async generator
