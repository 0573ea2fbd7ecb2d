"""StreamConfig: defaults, environment variables, and clear errors for bad values."""

from __future__ import annotations

import pytest

from sessionstream.config import StreamConfig


def test_defaults() -> None:
    config = StreamConfig()
    assert config.prefix == "/stream"
    assert config.heartbeat_interval == 15.0
    assert config.effective_sse_policy == "all" == config.effective_ws_policy


def test_from_env_parses_every_kind_of_field() -> None:
    config = StreamConfig.from_env(
        {
            "SESSIONSTREAM_PREFIX": "/live",
            "SESSIONSTREAM_MAX_CONNECTIONS": "1_000",
            "SESSIONSTREAM_HEARTBEAT_INTERVAL": "2.5",
            "SESSIONSTREAM_DRAIN_ON_SIGNAL": "off",
            "SESSIONSTREAM_WS_POLICY": "swap_after_processing",
            "SESSIONSTREAM_METRICS_PATH": "",
            "UNRELATED": "x",
        }
    )
    assert config.prefix == "/live"
    assert config.max_connections == 1000
    assert config.heartbeat_interval == 2.5
    assert config.drain_on_signal is False
    assert config.effective_ws_policy == "swap_after_processing"
    assert config.effective_sse_policy == "all"
    assert config.metrics_path is None


def test_overrides_win_over_the_environment() -> None:
    config = StreamConfig.from_env({"SESSIONSTREAM_MAX_PER_IP": "5"}, max_per_ip=7)
    assert config.max_per_ip == 7


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SESSIONSTREAM_MAX_CONNECTIONS": "many"}, "SESSIONSTREAM_MAX_CONNECTIONS='many'"),
        ({"SESSIONSTREAM_MAX_CONNECTIONS": "0"}, "max_connections=0: must be greater than 0"),
        ({"SESSIONSTREAM_POLICY": "newest"}, "must be one of 'all', 'latest'"),
        ({"SESSIONSTREAM_PREFIX": "stream/"}, "must start with '/'"),
        ({"SESSIONSTREAM_COOKIE_SECURE": "maybe"}, "expected one of 1/0"),
        ({"SESSIONSTREAM_DEGRADED_CONNECTION_RATIO": "1.5"}, "must be in (0, 1]"),
    ],
)
def test_bad_values_name_the_field_and_what_is_valid(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=None) as error:
        StreamConfig.from_env(env)
    assert message in str(error.value)


def test_unknown_override_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="no field"):
        StreamConfig.from_env({}, max_conections=3)


def test_wrong_type_in_code() -> None:
    with pytest.raises(ValueError, match="must be int"):
        StreamConfig(max_connections="10")  # type: ignore[arg-type]
