"""Django's PostgreSQL backend with a health check that costs no round trip on a quiet connection.

With ``CONN_HEALTH_CHECKS`` Django asks ``is_usable()`` before the first query of every request
on a persistent connection, and the stock answer is a ``SELECT 1``: one more round trip per
request, as long as the request's own statements. Here an idle connection on which the server
has sent nothing is taken as usable after a zero-timeout ``select()`` on its socket. A server
that ends a session — a restart, ``pg_terminate_backend``, a crash — sends its error and closes
the socket, so the socket turns readable; only then, or while a transaction is open, is the
real ``SELECT 1`` asked. What neither check can see (a peer gone without a word) the first
query finds, as before; its error ends the request with a 503 and the connection is replaced.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):  # a closed or invalid descriptor
            return False
        return super().is_usable() if readable else True
