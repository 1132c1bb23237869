"""config.postgresql: the health check needs no round trip on a quiet connection, and still
notices a session the server has ended."""

import time

import psycopg
import pytest
from django.db import connection

from tests.conftest import require_services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        require_services("the PostgreSQL backend's health check needs PostgreSQL")
    connection.ensure_connection()
    return connection


def _other(conn) -> psycopg.Connection:
    """A second session on the same database, beside the Django connection under test."""
    return psycopg.connect(**conn.get_connection_params(), autocommit=True)


def _last_statement(conn) -> str:
    """The last statement the server ran for this Django connection's session."""
    pid = conn.connection.info.backend_pid
    with _other(conn) as other:
        row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return row.fetchone()[0]


def _terminate(conn) -> int:
    """End the Django connection's session from the server side; returns its backend pid."""
    pid = conn.connection.info.backend_pid
    with _other(conn) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0] is True
    return pid


def test_a_quiet_idle_connection_is_usable_without_a_query(postgres):
    with postgres.cursor() as cursor:
        cursor.execute("SELECT 'before the health check'")
    assert postgres.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert postgres.is_usable() is True
    assert _last_statement(postgres) == "SELECT 'before the health check'"  # no SELECT 1 sent


def test_a_session_the_server_terminated_is_not_usable(postgres):
    _terminate(postgres)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and postgres.is_usable():
        time.sleep(0.05)  # the FATAL message and the close arrive asynchronously
    assert postgres.is_usable() is False
    postgres.close()


def test_a_request_after_the_server_ended_the_session_gets_a_new_connection(postgres, client):
    """Django's per-request health check closes the dead connection; the request succeeds."""
    pid = _terminate(postgres)
    time.sleep(0.2)
    postgres.health_check_done = False  # as at the start of a new request
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json()["database"] == "ok"
    assert postgres.connection.info.backend_pid != pid


def test_a_connection_inside_a_transaction_falls_back_to_the_real_check(postgres):
    with postgres.cursor() as cursor:
        postgres.set_autocommit(False)
        try:
            cursor.execute("SELECT 1")
            status = postgres.connection.info.transaction_status
            assert status == psycopg.pq.TransactionStatus.INTRANS
            assert postgres.is_usable() is True
        finally:
            postgres.rollback()
            postgres.set_autocommit(True)
