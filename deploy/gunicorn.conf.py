"""gunicorn settings for a sessionstream app, for Azure App Service and other hosts that
start ``gunicorn``: ``gunicorn -c deploy/gunicorn.conf.py app:app``.

The worker is uvicorn's with the handoff protocol classes, so streams are delivered by
the native engine. Each worker has its own hub: run one worker per instance unless
``SESSIONSTREAM_REDIS_URL`` is set, which makes the workers (and instances) behave as
one. Command-line options (``--bind``, ``--workers``) override these.
"""

from __future__ import annotations

import os

worker_class = "sessionstream.server.gunicorn.HandoffWorker"

# App Service passes the port it routes to in PORT (WEBSITES_PORT for custom containers).
bind = [f"0.0.0.0:{os.environ.get('PORT') or os.environ.get('WEBSITES_PORT') or '8000'}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))

# A uvicorn worker answers gunicorn's heartbeat from its event loop, which never blocks
# on a stream; this only catches a worker that hangs.
timeout = 60
# SIGTERM: streams get their shutdown frame within shutdown_timeout (5 s by default).
graceful_timeout = 20
# Longer than the front end's idle timeout for ordinary keep-alive requests, so the
# proxy, not the worker, closes idle connections (App Service: 230 s).
keepalive = 240

# FORWARDED_ALLOW_IPS (read by gunicorn) must name the front end, or every client is
# counted as the proxy's address by the per-IP limits; on App Service the front end is
# the only way in, so "*" is the usual value there.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
