"""The sample app's sharded side: each request goes to the shard its key maps to.

SHARD_MAP names a JSON file the lab renders: {"key": ..., "routing": "hash" | "range",
"front": null | {"name", "address"}, "shards": [{"name", "address", "from", "to"}, ...]}.
With a front (a MariaDB Spider node) the app routes nothing: every query goes to the front,
with the key in its WHERE clause when it has one, and Spider picks the shards. Endpoints:
POST /shard/write?id=ID&key=K (INSERT on the key's shard), GET /shard/read/<id>?key=K (one
shard) and GET /shard/read/<id> without a key (every shard in parallel: a fan-out, which
fails when any shard does). Every answer names the shard in X-Shard ("*" for a fan-out; the
front's name behind Spider, which does not say which shard answered).
The routing is pure (`shard_index`), so labctl's unit tests load this file as it is.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

FAN_OUT = "*"
# Spider's "Unable to connect to foreign data source": the shard was never reached.
SPIDER_CANNOT_CONNECT = 1429


@dataclass(frozen=True)
class ShardMap:
    """The shards in order, and how a key picks one."""

    key: str
    routing: str
    names: list[str]
    addresses: list[str]
    bounds: list[tuple[int, int | None]]
    front: dict[str, str] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardMap:
        shards = data["shards"]
        return cls(str(data.get("key", "key")), str(data["routing"]), [s["name"] for s in shards],
                   [s["address"] for s in shards], [(int(s.get("from") or 0), s.get("to")) for s in shards],
                   data.get("front"))


def shard_index(shard_map: ShardMap, key: int) -> int:
    """Which shard holds `key`: crc32 of its decimal text modulo the shard count (hash), or the
    shard whose [from, to) range holds it (range; a key below every range is refused)."""
    if shard_map.routing == "hash":
        return zlib.crc32(str(key).encode()) % len(shard_map.names)
    for index, (low, high) in enumerate(shard_map.bounds):
        if low <= key and (high is None or key < high):
            return index
    raise ValueError(f"key {key} is in no shard's range")


_state: dict[str, Any] = {}
_setup = threading.Lock()


def _shards() -> tuple[ShardMap, list[Any], ThreadPoolExecutor] | str:
    path = os.environ.get("SHARD_MAP", "").strip()
    if not path:
        return "no shard map configured: set SHARD_MAP"
    import appdb

    if appdb.pymysql is None:
        return "no MySQL driver in this image (PyMySQL is not installed)"
    # labctl rewrites the map in place when the strategy changes: the next request routes by it.
    changed = os.stat(path).st_mtime_ns
    with _setup:
        if _state.get("changed") != changed:
            with open(path, encoding="utf-8") as handle:
                shard_map = ShardMap.from_json(json.load(handle))
            addresses = [shard_map.front["address"]] if shard_map.front else shard_map.addresses
            pools = [appdb.Pool(*appdb.parse_address(a)) for a in addresses]
            if "fan" not in _state:
                _state["fan"] = ThreadPoolExecutor(max_workers=4 * len(pools))
            _state.update(map=shard_map, pools=pools, changed=changed)
        return _state["map"], _state["pools"], _state["fan"]


def handle(method: str, path: str, query: dict[str, list[str]], served_by: str) -> tuple[Any, str]:
    """(appdb.Answer, shard name) for one /shard/... request."""
    import appdb

    found = _shards()
    if isinstance(found, str):
        return appdb.Answer(503, {"outcome": appdb.FAILED, "error": found}), ""
    shard_map, pools, fan = found
    ident = query.get("id", [""])[0] if path == "/shard/write" else path.removeprefix("/shard/read/")
    key_text = query.get("key", [""])[0]
    if not appdb.valid_id(ident) or (key_text and not key_text.lstrip("-").isdigit()):
        return appdb.Answer(400, {"outcome": appdb.FAILED, "error": "expected id=ID and an integer key"}), ""
    if path == "/shard/write" and (method != "POST" or not key_text):
        return appdb.Answer(405, {"error": "use POST /shard/write?id=ID&key=K"}), ""
    if shard_map.front:
        return _through_front(pools[0], path, ident, key_text, served_by), shard_map.front["name"]
    if not key_text:
        return _fan_out(pools, fan, ident), FAN_OUT
    try:
        index = shard_index(shard_map, int(key_text))
    except ValueError as exc:
        return appdb.Answer(400, {"outcome": appdb.FAILED, "error": str(exc)}), ""
    name = shard_map.names[index]
    try:
        if path == "/shard/write":
            return _keyed(pools[index], lambda link: _insert(link, ident, int(key_text), served_by)), name
        return _keyed(pools[index], lambda link: _select(link, ident)), name
    except appdb.DbError as exc:
        return exc.answer(), name


def _through_front(pool: Any, path: str, ident: str, key_text: str, served_by: str) -> Any:
    import appdb

    key = int(key_text) if key_text else None
    try:
        if path == "/shard/write":
            return _keyed(pool, lambda link: _insert(link, ident, int(key_text), served_by))
        return _keyed(pool, lambda link: _select(link, ident, key))
    except appdb.DbError as exc:
        return exc.answer()


def _keyed(pool: Any, operation: Any) -> Any:
    import appdb

    return appdb._with_connection(pool, operation)


def _insert(link: Any, ident: str, key: int, served_by: str) -> Any:
    import appdb

    try:
        with link.conn.cursor() as cursor:
            cursor.execute("INSERT INTO orders (id, shard_key, served_by) VALUES (%s, %s, %s)",
                           (ident, key, served_by))
    except appdb._errors() as exc:
        code = getattr(exc, "args", (None,))[0]
        if code == appdb.MYSQL_DUPLICATE_KEY:
            return appdb.Answer(409, {"id": ident, "outcome": "duplicate"}, link.node)
        if code == SPIDER_CANNOT_CONNECT:
            raise appdb.DbError(appdb.FAILED, "insert", exc, link.node, retry_safe=False) from exc
        # autocommit: an error before the answer may still have committed on the server.
        raise appdb.DbError(appdb.UNKNOWN, "insert", exc, link.node, retry_safe=False) from exc
    return appdb.Answer(200, {"id": ident, "outcome": "ack"}, link.node)


def _select(link: Any, ident: str, key: int | None = None) -> Any:
    import appdb

    # Behind Spider the key in the WHERE clause is what prunes the query to one shard.
    where, args = ("id = %s AND shard_key = %s", (ident, key)) if key is not None else ("id = %s", (ident,))
    try:
        with link.conn.cursor() as cursor:
            cursor.execute(f"SELECT id, shard_key FROM orders WHERE {where}", args)
            row = cursor.fetchone()
    except appdb._errors() as exc:
        raise appdb.DbError(appdb.FAILED, "select", exc, link.node) from exc
    if row is None:
        return appdb.Answer(404, {"id": ident, "found": False, "error": "not found"}, link.node)
    return appdb.Answer(200, {"id": ident, "found": True, "key": row[1]}, link.node)


def _fan_out(pools: list[Any], fan: ThreadPoolExecutor, ident: str) -> Any:
    import appdb

    futures = [fan.submit(_keyed, pool, lambda link: _select(link, ident)) for pool in pools]
    answers, errors = [], []
    for future in futures:
        try:
            answers.append(future.result())
        except appdb.DbError as exc:
            errors.append(exc)
    if errors:
        # A query that must ask every shard has no answer while one of them is down.
        return errors[0].answer()
    hits = [a for a in answers if a.status == 200]
    return hits[0] if hits else answers[0]
