"""course_lib.database: a real SQLite database with counted, scaled, injectable latency and faults."""

import threading

import pytest

from course_lib import database as database_module
from course_lib.database import OPERATIONS, DatabaseError, SlowDatabase


@pytest.fixture
def sleeps(monkeypatch):
    """Record the delays the database asks for instead of sleeping."""
    recorded = []
    monkeypatch.setattr(database_module.time, "sleep", recorded.append)
    return recorded


@pytest.fixture
def db():
    database = SlowDatabase(latency=0)
    yield database
    database.close()


def test_seeded_rows_are_deterministic():
    a, b = SlowDatabase(latency=0, seed=7), SlowDatabase(latency=0, seed=7)
    assert a.get_user(5) == b.get_user(5)
    assert a.posts_by_user(3) == b.posts_by_user(3)
    assert SlowDatabase(latency=0, seed=8).get_product(2) != a.get_product(2)


def test_reads_return_dicts_or_none(db):
    user = db.get_user(1)
    assert user == {"id": 1, "name": "user1", "email": "user1@example.org", "country": user["country"]}
    assert db.get_user(10_000) is None
    assert all(p["user_id"] == 4 for p in db.posts_by_user(4))
    popular = db.popular_products(5)
    assert len(popular) == 5
    assert [p["popularity"] for p in popular] == sorted((p["popularity"] for p in popular), reverse=True)


def test_writes_change_the_database(db):
    new_id = db.insert("users", name="Ada", email="ada@example.org", country="GB")
    assert db.get_user(new_id)["name"] == "Ada"
    assert db.update("users", new_id, name="Grace") is True
    assert db.get_user(new_id)["name"] == "Grace"
    assert db.delete("users", new_id) is True
    assert db.get_user(new_id) is None
    assert db.update("users", new_id, name="x") is False
    assert db.delete("users", new_id) is False


def test_every_query_is_counted_by_operation(db):
    db.get_user(1)
    db.get_user(2)
    db.get_post(1)
    db.update("products", 1, price=9.5)
    assert db.calls["get_user"] == 2 and db.calls_to("get_post") == 1 and db.calls_to("update_product") == 1
    assert db.total_calls == 4
    db.reset_counts()
    assert db.total_calls == 0


def test_latency_is_paid_per_query_and_scaled(sleeps, monkeypatch):
    monkeypatch.setenv("COURSE_LATENCY_SCALE", "0.5")
    db = SlowDatabase(latency=0.1)
    db.get_user(1)
    db.ids("users")
    assert sleeps == [pytest.approx(0.05), pytest.approx(0.05)]
    with db.slowdown(4):
        db.get_user(1)
    assert sleeps[-1] == pytest.approx(0.2)
    db.latency = 0
    db.get_user(1)
    assert len(sleeps) == 3  # zero latency: no sleep at all


def test_failures_can_be_injected(db):
    db.fail_next(2, operation="get_user")
    for _ in range(2):
        with pytest.raises(DatabaseError, match=r"get_user\(1\)"):
            db.get_user(1)
    assert db.get_user(1) is not None
    assert db.get_product(1) is not None
    with db.outage():
        with pytest.raises(DatabaseError, match="outage"):
            db.get_product(1)
    assert db.get_product(1) is not None


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d: d.get("customers", 1), "unknown table 'customers'"),
        (lambda d: d.calls_to("get_usr"), "unknown operation 'get_usr'"),
        (lambda d: d.fail_next(1, operation="drop_table"), "unknown operation"),
        (lambda d: d.update("users", 1, nickname="x"), "unknown column"),
        (lambda d: d.update("users", 1), "at least one column"),
        (lambda d: d.insert("users", name="x"), "missing email, country"),
        (lambda d: setattr(d, "latency", -1), "latency must be"),
        (lambda d: d.popular_products(-1), "limit must be"),
    ],
)
def test_bad_input_gets_a_clear_error(db, call, message):
    with pytest.raises(ValueError, match=message):
        call(db)


def test_negative_latency_is_rejected_at_construction():
    with pytest.raises(ValueError, match="latency must be a number of seconds >= 0"):
        SlowDatabase(latency=-0.1)


def test_operations_list_matches_what_is_counted(db):
    db.get_user(1)
    db.popular_products(1)
    assert set(db.calls) <= set(OPERATIONS)


def test_concurrent_reads_and_writes_are_all_counted(db):
    threads, per_thread = 8, 50
    barrier = threading.Barrier(threads)
    errors = []

    def work(n):
        barrier.wait()
        try:
            for i in range(per_thread):
                db.update("users", 1 + (n + i) % 10, name=f"t{n}-{i}")
                db.get_user(1 + i % 10)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    assert db.calls["update_user"] == db.calls["get_user"] == threads * per_thread


def test_an_explicit_path_persists(tmp_path):
    path = tmp_path / "shop.sqlite3"
    first = SlowDatabase(path, latency=0)
    first.update("users", 1, name="kept")
    first.close()
    assert SlowDatabase(path, latency=0).get_user(1)["name"] == "kept"
