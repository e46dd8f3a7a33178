"""The sample app's database side: POST /write and GET /read/<id> against MySQL, MariaDB
or PostgreSQL.

Configured by DB_ENGINE ("mysql", the default, for MySQL and MariaDB through PyMySQL, or
"postgres" through pg8000), DB_WRITER ("host:port": the primary, or HAProxy's writer
frontend), DB_READERS ("host:port[,host:port...]", reads are spread over them; defaults to
the writer), DB_USER, DB_PASSWORD and DB_NAME (default labctl). The rows live in
labctl.writes: MySQL's database labctl, or Postgres's schema labctl. Every answer names
the node that served it (MySQL's @@hostname, Postgres's labctl.node setting; asked once per
connection: through HAProxy a connection stays on one server). Errors say what is known:
"failed" when nothing can have been committed, "unknown" when the COMMIT was sent and its
answer never came.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

try:
    import pymysql
except ImportError:  # the app still serves its other endpoints without a driver
    pymysql = None
try:
    import pg8000.dbapi as pg8000
except ImportError:
    pg8000 = None

CONNECT_TIMEOUT_S = float(os.environ.get("DB_CONNECT_TIMEOUT", "1"))
READ_TIMEOUT_S = float(os.environ.get("DB_READ_TIMEOUT", "5"))
# A server that accepts the TCP connection but does not finish the handshake this fast is
# treated as down (measured: a node joining a network can stall new connections for seconds).
HANDSHAKE_TIMEOUT_S = float(os.environ.get("DB_HANDSHAKE_TIMEOUT", "2"))
# A reused connection that failed faster than this met a dead or fenced server: one retry
# on a fresh connection is safe (nothing was committed) and cheap. A slow failure is not
# retried, so a request never waits for two timeouts.
FAST_FAILURE_S = 1.0
MAX_IDLE = 64
MYSQL_DUPLICATE_KEY = 1062
POSTGRES_UNIQUE_VIOLATION = "23505"
MAX_ID_LENGTH = 64
FAILED, UNKNOWN = "failed", "unknown"


@dataclass
class Answer:
    """What the HTTP handler sends back: a status, a JSON body and the DB node."""

    status: int
    body: dict[str, Any]
    node: str = ""


class DbError(Exception):
    """A request the database did not answer; `outcome` says what is known of its effect."""

    def __init__(self, outcome: str, stage: str, error: object, node: str = "", retry_safe: bool = True) -> None:
        super().__init__(f"{stage}: {error}")
        self.outcome, self.stage, self.node, self.retry_safe = outcome, stage, node, retry_safe
        self.error = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)

    def answer(self) -> Answer:
        status = 504 if self.outcome == UNKNOWN else 503
        return Answer(status, {"outcome": self.outcome, "stage": self.stage, "error": self.error}, self.node)


@dataclass
class Link:
    """One open connection and the node at its far end (its driver's node_query)."""

    conn: Any
    node: str

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already broken: closing is best effort
            self.conn.close()


class MySQL:
    """PyMySQL, for MySQL and MariaDB."""

    package = "PyMySQL"
    node_query = "SELECT @@hostname"

    @property
    def module(self) -> Any:
        return pymysql

    def errors(self) -> tuple[type[BaseException], ...]:
        return (pymysql.MySQLError, OSError)

    def connect(self, host: str, port: int) -> Any:
        return pymysql.connect(
            host=host, port=port, user=os.environ.get("DB_USER", ""), password=os.environ.get("DB_PASSWORD", ""),
            database=os.environ.get("DB_NAME", "labctl"), connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=HANDSHAKE_TIMEOUT_S, write_timeout=READ_TIMEOUT_S, autocommit=True, charset="utf8mb4")

    def begin(self, conn: Any) -> None:
        conn.begin()  # autocommit is on for reads: a write opens its transaction itself

    def end_read(self, conn: Any) -> None:
        pass

    def after_handshake(self, conn: Any) -> None:
        # Through HAProxy, a connection routed to a server that just died hangs in the
        # handshake; it gets the short timeout. PyMySQL applies _read_timeout before every
        # read, so queries get the longer one from here on.
        conn._read_timeout = READ_TIMEOUT_S

    def is_duplicate(self, exc: BaseException) -> bool:
        return getattr(exc, "args", (None,))[0] == MYSQL_DUPLICATE_KEY


class Postgres:
    """pg8000, for PostgreSQL: autocommit off, so COMMIT is the statement that acknowledges."""

    package = "pg8000"
    node_query = "SELECT current_setting('labctl.node', true)"

    @property
    def module(self) -> Any:
        return pg8000

    def errors(self) -> tuple[type[BaseException], ...]:
        return (pg8000.Error, OSError)

    def connect(self, host: str, port: int) -> Any:
        # pg8000 has one socket timeout for everything: the handshake's short one first.
        return pg8000.connect(
            user=os.environ.get("DB_USER", ""), password=os.environ.get("DB_PASSWORD", ""), host=host, port=port,
            database=os.environ.get("DB_NAME", "postgres"), timeout=HANDSHAKE_TIMEOUT_S)

    def after_handshake(self, conn: Any) -> None:
        conn.rollback()  # end the transaction the node query opened
        conn._usock.settimeout(READ_TIMEOUT_S)

    def begin(self, conn: Any) -> None:
        pass  # the INSERT opens the transaction

    def end_read(self, conn: Any) -> None:
        conn.rollback()  # no connection is left idle in a transaction

    def is_duplicate(self, exc: BaseException) -> bool:
        fields = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        return fields.get("C") == POSTGRES_UNIQUE_VIOLATION


DRIVERS = {"mysql": MySQL, "postgres": Postgres}


def driver() -> MySQL | Postgres:
    engine = os.environ.get("DB_ENGINE", "mysql").strip() or "mysql"
    return DRIVERS[engine]()


def _errors() -> tuple[type[BaseException], ...]:
    try:
        chosen = driver()
    except KeyError:
        return (OSError,)
    return chosen.errors() if chosen.module is not None else (OSError,)


@dataclass
class Pool:
    """Idle connections to one address; any error empties it, so the next request reconnects."""

    host: str
    port: int
    idle: list[Link] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def take(self, fresh: bool = False) -> tuple[Link, bool]:
        """An idle connection (reused=True) or a new one; DbError "failed" when none can be made."""
        if not fresh:
            with self.lock:
                if self.idle:
                    return self.idle.pop(), True
        return self.connect(), False

    def connect(self) -> Link:
        chosen = driver()
        try:
            conn = chosen.connect(self.host, self.port)
            cursor = conn.cursor()
            cursor.execute(chosen.node_query)
            node = str(cursor.fetchone()[0])
            cursor.close()
            chosen.after_handshake(conn)
        except _errors() as exc:
            raise DbError(FAILED, f"connect {self.address}", exc) from exc
        return Link(conn, node)

    def give(self, link: Link) -> None:
        with self.lock:
            if len(self.idle) < MAX_IDLE:
                self.idle.append(link)
                return
        link.close()

    def flush(self) -> None:
        with self.lock:
            stale, self.idle = self.idle, []
        for link in stale:
            link.close()


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)


class Database:
    """The writer and reader pools of one app process."""

    def __init__(self, writer: str, readers: str) -> None:
        self.writer = Pool(*parse_address(writer))
        self.readers = [Pool(*parse_address(a)) for a in readers.split(",") if a.strip()] or [self.writer]
        self.turn = itertools.count()

    def write(self, write_id: str, served_by: str) -> Answer:
        """INSERT the id in its own transaction; 200 only once COMMIT has returned."""
        return _with_connection(self.writer, lambda link: _insert(link, write_id, served_by))

    def read(self, read_id: str, primary: bool) -> Answer:
        """The row from a reader (the next in turn, then the others), or from the writer."""
        if primary:
            return _with_connection(self.writer, lambda link: _select(link, read_id))
        start = next(self.turn) % len(self.readers)
        order = self.readers[start:] + self.readers[:start]
        failure: DbError | None = None
        for pool in order:
            try:
                return _with_connection(pool, lambda link: _select(link, read_id))
            except DbError as exc:
                failure = exc
                if not exc.retry_safe:
                    break
        assert failure is not None
        raise failure


def _with_connection(pool: Pool, operation: Callable[[Link], Answer]) -> Answer:
    link, reused = pool.take()
    began = time.monotonic()
    try:
        answer = operation(link)
    except DbError as exc:
        link.close()
        pool.flush()  # the others most likely lead to the same dead or fenced server
        if not (reused and exc.retry_safe and time.monotonic() - began < FAST_FAILURE_S):
            raise
        link, _ = pool.take(fresh=True)
        try:
            answer = operation(link)
        except DbError:
            link.close()
            raise
    pool.give(link)
    return answer


def _insert(link: Link, write_id: str, served_by: str) -> Answer:
    chosen = driver()
    try:
        chosen.begin(link.conn)
        cursor = link.conn.cursor()
        cursor.execute("INSERT INTO labctl.writes (id, served_by) VALUES (%s, %s)", (write_id, served_by))
        cursor.close()
    except _errors() as exc:
        if chosen.is_duplicate(exc):
            link.conn.rollback()
            return Answer(409, {"id": write_id, "outcome": "duplicate", "error": "id already written"}, link.node)
        # No COMMIT was sent: the server rolls the transaction back when it fails or the link drops.
        raise DbError(FAILED, "insert", exc, link.node) from exc
    try:
        link.conn.commit()
    except _errors() as exc:
        raise DbError(UNKNOWN, "commit", exc, link.node, retry_safe=False) from exc
    return Answer(200, {"id": write_id, "outcome": "ack"}, link.node)


def _select(link: Link, read_id: str) -> Answer:
    try:
        cursor = link.conn.cursor()
        cursor.execute("SELECT id, served_by, created_at FROM labctl.writes WHERE id = %s", (read_id,))
        row = cursor.fetchone()
        cursor.close()
        driver().end_read(link.conn)
    except _errors() as exc:
        raise DbError(FAILED, "select", exc, link.node) from exc
    if row is None:
        return Answer(404, {"id": read_id, "found": False, "error": "not found"}, link.node)
    written = {"id": row[0], "written_by": row[1], "created_at": row[2].isoformat() if row[2] else None}
    return Answer(200, {"id": read_id, "found": True, "row": written}, link.node)


_database: list[Database] = []
_setup = threading.Lock()


def database() -> Database | str:
    """This process's Database, or why there is none (a message for a 503)."""
    writer = os.environ.get("DB_WRITER", "").strip()
    if not writer:
        return "no database configured: set DB_WRITER (and DB_READERS, DB_USER, DB_PASSWORD)"
    engine = os.environ.get("DB_ENGINE", "mysql").strip() or "mysql"
    if engine not in DRIVERS:
        return f"unknown DB_ENGINE {engine!r}: expected one of {', '.join(DRIVERS)}"
    chosen = driver()
    if chosen.module is None:
        return f"no {engine} driver in this image ({chosen.package} is not installed)"
    with _setup:
        if not _database:
            try:
                _database.append(Database(writer, os.environ.get("DB_READERS", "")))
            except ValueError as exc:
                return f"bad DB_WRITER/DB_READERS: {exc}"
        return _database[0]


def valid_id(text: str) -> bool:
    return 0 < len(text) <= MAX_ID_LENGTH and text.isprintable()


def handle(method: str, path: str, query: dict[str, list[str]], served_by: str) -> Answer:
    """The answer to POST /write?id=ID, GET /read/<id> or GET /read/<id>?primary=1."""
    if path == "/write" and method != "POST":
        return Answer(405, {"error": "use POST /write?id=ID"})
    ident = query.get("id", [""])[0] if path == "/write" else path.removeprefix("/read/")
    if not valid_id(ident):
        return Answer(400, {"outcome": FAILED, "error": f"id must be 1-{MAX_ID_LENGTH} printable characters"})
    db = database()
    if isinstance(db, str):
        return Answer(503, {"outcome": FAILED, "error": db})
    try:
        if path == "/write":
            return db.write(ident, served_by)
        return db.read(ident, query.get("primary", ["0"])[0] in ("1", "true", "yes"))
    except DbError as exc:
        return exc.answer()
