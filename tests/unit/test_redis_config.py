"""Redis settings are validated when the config is made, and never show the password."""

from __future__ import annotations

import pytest

from sessionstream.config import StreamConfig


def test_redis_url_validation_in_config() -> None:
    with pytest.raises(ValueError, match="redis_url"):
        StreamConfig(redis_url="redis://:pw@host:0/0")
    with pytest.raises(ValueError, match="redis_key_prefix"):
        StreamConfig(redis_url="redis://127.0.0.1:6379/0", redis_key_prefix="has space")
    config = StreamConfig.from_env({"SESSIONSTREAM_REDIS_URL": "redis://u:pw@127.0.0.1:1/2"})
    assert config.redis_url == "redis://u:pw@127.0.0.1:1/2"
    assert "pw" not in repr(config)
    assert StreamConfig(redis_subscribe=" a:* , b ,").redis_patterns == ("a:*", "b")
