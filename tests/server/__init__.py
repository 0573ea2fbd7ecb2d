"""Tests of the uvicorn socket-handoff integration (sessionstream.server)."""
