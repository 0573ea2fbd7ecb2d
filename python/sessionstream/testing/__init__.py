"""Test a sessionstream app as its users see it: real servers, isolated sessions.

The fixtures live in :mod:`sessionstream.testing.plugin` (a pytest plugin); this module
re-exports what tests use directly. See docs/testing.md.
"""

from .assertions import assert_events, assert_isolated, assert_no_gap_no_duplicate, assert_resumed
from .clients import SessionClient, SSEStream, StreamEvent, WSStream
from .server import DELIVERIES, StreamServer, server_command

__all__ = [
    "DELIVERIES",
    "SSEStream",
    "SessionClient",
    "StreamEvent",
    "StreamServer",
    "WSStream",
    "assert_events",
    "assert_isolated",
    "assert_no_gap_no_duplicate",
    "assert_resumed",
    "server_command",
]
