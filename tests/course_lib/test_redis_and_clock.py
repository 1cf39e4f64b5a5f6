"""course_lib.redis_conn and course_lib.clock, on fakeredis and on a real redis-server."""

import pytest
import redis
from cachetools import TTLCache

from course_lib.clock import FakeClock
from course_lib.redis_conn import (
    RedisUnavailable, age_keys, clear_namespace, get_redis, is_embedded, redis_outage,
)


def test_default_is_one_shared_embedded_server(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    a, b = get_redis(), get_redis()
    assert is_embedded(a)
    a.set("test:shared", "yes")
    assert b.get("test:shared") == "yes"
    a.delete("test:shared")


def test_redis_url_selects_a_real_server(monkeypatch, redis_url):
    monkeypatch.setenv("REDIS_URL", redis_url)
    client = get_redis()
    assert not is_embedded(client)
    assert client.ping() is True


@pytest.mark.parametrize("url", ["http://localhost:6379", "localhost:6379", "mysql://x"])
def test_unknown_scheme_is_a_clear_error(url):
    with pytest.raises(ValueError, match="use one of redis://, rediss://, unix://"):
        get_redis(url)


def test_unreachable_server_names_the_url():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RedisUnavailable, match=f"cannot reach Redis at redis://u:\\*\\*\\*@127.0.0.1:{port}/0"):
        get_redis(f"redis://u:secret@127.0.0.1:{port}/0")


def test_outage_raises_connection_errors_then_recovers(redis_client):
    redis_client.set("test:k", "v")
    with redis_outage(redis_client):
        with pytest.raises(redis.ConnectionError):
            redis_client.get("test:k")
        with pytest.raises(redis.ConnectionError):
            redis_client.pipeline().get("test:k").execute()
    assert redis_client.get("test:k") == "v"


def test_clear_namespace_removes_every_key_of_the_prefix_only(redis_client):
    with redis_client.pipeline(transaction=False) as pipe:
        for i in range(3000):
            pipe.set(f"test:ns:{i}", i)
        pipe.set("test:other", 1)
        pipe.set("test:ns*literal", 1)
        pipe.execute()
    assert clear_namespace(redis_client, "test:ns:") == 3000
    assert redis_client.exists("test:other", "test:ns*literal") == 2
    assert list(redis_client.scan_iter(match="test:ns:*")) == []


def test_clear_namespace_refuses_an_empty_prefix(redis_client):
    with pytest.raises(ValueError, match="prefix must not be empty"):
        clear_namespace(redis_client, "")


def test_age_keys_moves_expiry_forward(redis_client):
    redis_client.set("test:short", 1, ex=10)
    redis_client.set("test:forever", 1)
    assert age_keys(redis_client, 9, match="test:*") == 1
    assert 0 < redis_client.pttl("test:short") <= 1000
    assert redis_client.ttl("test:forever") == -1
    age_keys(redis_client, 1, match="test:*")
    assert redis_client.exists("test:short") == 0
    assert redis_client.exists("test:forever") == 1
    with pytest.raises(ValueError, match="backwards"):
        age_keys(redis_client, -1)


def test_fake_clock_drives_cachetools_without_sleeping():
    clock = FakeClock(start=100)
    cache = TTLCache(maxsize=4, ttl=30, timer=clock)
    cache["k"] = "v"
    clock.advance(29.999)
    assert "k" in cache
    clock.advance(0.001)
    assert "k" not in cache
    assert clock() == clock.time() == pytest.approx(130)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


def test_fake_clock_ages_redis_keys(redis_client):
    clock = FakeClock(redis_clients=(redis_client,), redis_match="test:*")
    redis_client.set("test:session", "s", ex=60)
    clock.advance(59)
    assert redis_client.get("test:session") == "s"
    clock.advance(1)
    assert redis_client.get("test:session") is None
