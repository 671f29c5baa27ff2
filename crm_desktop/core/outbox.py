"""The outbox: what only this machine has — typed operations waiting for the server — and the kept catalogue/profile.

``synchronous=FULL``: `enqueue` returns after the commit reached the disk (fsync of the WAL), because the form is
cleared on return and what was typed must survive a crash or power cut. The file is never deleted: when damaged it is
renamed aside and whatever rows are readable are carried into a new file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crm_desktop.core.db import NewerSchema, Recovery, StoreBase, StoreError, encode_json, set_aside, write_txn
from crm_desktop.core.models import Op, OutboxItem, OutboxState
from crm_desktop.core.phone import mask as phone_mask

log = logging.getLogger(__name__)


OUTBOX_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE outbox (
            seq              INTEGER PRIMARY KEY,      -- rowid: the order leads were typed in; never reused
            client_ref       TEXT NOT NULL UNIQUE,     -- idempotency key, also inside payload
            payload          TEXT NOT NULL,            -- JSON: the `lead` object for create_lead
            state            TEXT NOT NULL
                             CHECK (state IN ('queued', 'sending', 'done', 'parked', 'discarded', 'replaced')),
            attempts         INTEGER NOT NULL DEFAULT 0,
            last_error       TEXT,
            answer           TEXT,                     -- JSON: the server's answer, when there is one
            created_at       REAL NOT NULL,
            updated_at       REAL NOT NULL,
            next_attempt_at  REAL NOT NULL,            -- backoff: not sent before this time
            label            TEXT NOT NULL DEFAULT '', -- customer name + masked phone, safe to show and log
            replaced_by      TEXT                      -- client_ref of the edited resend of a parked item
        )
        """,
        # The drain loop asks "oldest queued item that is due" and "when is the next one due" after every send;
        # the partial index holds only queued rows, so it stays tiny however long the history grows.
        "CREATE INDEX outbox_queued ON outbox (seq, next_attempt_at) WHERE state = 'queued'",
        # The "this shift" list reads by creation time.
        "CREATE INDEX outbox_created ON outbox (created_at)",
        # Catalogue and profile, kept for an offline start.
        """
        CREATE TABLE kept (
            key       TEXT PRIMARY KEY,
            value     TEXT NOT NULL,   -- JSON
            saved_at  REAL NOT NULL
        )
        """,
    ),
    (
        # 2: operations, not only leads. Items queued by an older desk are create_lead calls about their phone, so
        # they keep going out, in their order.
        "ALTER TABLE outbox ADD COLUMN op TEXT NOT NULL DEFAULT 'create_lead'",
        "ALTER TABLE outbox ADD COLUMN lead_key TEXT",  # the lead's E.164 phone: items about one lead go in order
        "ALTER TABLE outbox ADD COLUMN lead_ref TEXT",  # client_ref of the queued create_lead this item needs first
        "ALTER TABLE outbox ADD COLUMN meta TEXT",  # JSON the desk needs to show the item; never sent
        "UPDATE outbox SET lead_key = json_extract(payload, '$.phone')",
        # "Is an earlier item about this lead still open?" for every candidate the drain loop looks at, and this
        # desk's items about one lead for the duplicate banner and the lead view.
        "CREATE INDEX outbox_lead ON outbox (lead_key, seq)",
        # Items answered in the last hour, laid over the cache until the feed brings the server's version.
        "CREATE INDEX outbox_updated ON outbox (updated_at)",
    ),
)

_BASE_COLUMNS = (
    "seq, client_ref, payload, state, attempts, last_error, answer, created_at, updated_at, next_attempt_at, label, "
    "replaced_by"
)
_OUTBOX_COLUMNS = f"{_BASE_COLUMNS}, op, lead_key, lead_ref, meta"
_SELECT_ITEM = f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE client_ref = :ref"

_INSERT_ITEM = """
    INSERT INTO outbox (client_ref, payload, state, attempts, created_at, updated_at, next_attempt_at, label,
                        op, lead_key, lead_ref, meta)
    VALUES (:ref, :payload, 'queued', 0, :now, :now, :now, :label, :op, :lead_key, :lead_ref, :meta)
"""

# The queued items that may go now: the first open item of their lead (an earlier one about the same phone, even
# one in backoff, holds them: a later item never overtakes it), and, for a call on a lead this desk is still
# creating, only once that create_lead was answered. Items of other leads are not held up. Literal states so the
# planner can use the partial indexes.
_HEADS = f"""
    SELECT {", ".join("o." + c.strip() for c in _OUTBOX_COLUMNS.split(","))} FROM outbox AS o
     WHERE o.state = 'queued'
       AND NOT EXISTS (SELECT 1 FROM outbox AS e
                        WHERE e.lead_key = o.lead_key AND e.seq < o.seq AND e.state IN ('queued', 'sending'))
       AND (o.lead_ref IS NULL
            OR EXISTS (SELECT 1 FROM outbox AS c WHERE c.client_ref = o.lead_ref AND c.state = 'done'))
"""
_NEXT_DUE = f"{_HEADS} AND o.next_attempt_at <= :now ORDER BY o.seq LIMIT 1"
_EARLIEST_DUE = f"SELECT min(next_attempt_at) FROM ({_HEADS})"


class OutboxStateError(ValueError):
    """An outbox transition that cannot happen from the item's current state (or for an unknown client_ref).

    A programming error or a UI race (e.g. "discard" on an item that was already resent), not an environment problem.
    """


def outbox_label(payload: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> str:
    """Customer name + masked phone: how a queued lead (or a call, whose name and phone are in `meta`) is named in
    lists and logs."""
    extra = meta or {}
    name = str(payload.get("customer_name") or extra.get("customer_name") or "").strip()
    phone = str(payload.get("phone") or extra.get("phone") or "").strip()
    return " · ".join(p for p in (name, phone_mask(phone) if phone else "") if p)


def unsaved_item(
    op: Op,
    payload: Mapping[str, Any],
    *,
    lead_key: str | None,
    lead_ref: str | None = None,
    meta: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> OutboxItem:
    """An operation as the desk shows it between Enter and its commit (seq 0: not stored yet): the "Saving…" row
    of This shift and, for a call, what the lists lay over the cache meanwhile. `payload` holds its client_ref, the
    one it will be stored under. `enqueue` returns the same item with its seq once stored."""
    now = time.time() if now is None else now
    extra = dict(meta or {})
    return OutboxItem(
        seq=0,
        client_ref=str(payload["client_ref"]),
        payload=dict(payload),
        state=OutboxState.QUEUED,
        attempts=0,
        last_error=None,
        answer=None,
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
        label=outbox_label(payload, {"phone": lead_key, **extra}),
        op=op,
        lead_key=lead_key,
        lead_ref=lead_ref,
        meta=extra,
    )


def _item(row: Sequence[Any]) -> OutboxItem:
    return OutboxItem(
        seq=row[0],
        client_ref=row[1],
        payload=json.loads(row[2]),
        state=OutboxState(row[3]),
        attempts=row[4],
        last_error=row[5],
        answer=None if row[6] is None else json.loads(row[6]),
        created_at=row[7],
        updated_at=row[8],
        next_attempt_at=row[9],
        label=row[10],
        replaced_by=row[11],
        op=Op(row[12]),
        lead_key=row[13],
        lead_ref=row[14],
        meta={} if row[15] is None else json.loads(row[15]),
    )


def _without_ref(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != "client_ref"}


class OutboxStore(StoreBase):
    """The outbox file's half of `Store`."""

    def _recover_outbox(self) -> Recovery:
        try:
            conn = self._outbox_db()
            with self._blame("outbox"):
                problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
        except StoreError as exc:
            if exc.kind != "corrupt" or isinstance(exc, NewerSchema):
                raise
            problems = [str(exc.__cause__ or exc)]
        if problems == ["ok"]:
            return Recovery()
        log.warning("outbox file is damaged (%s); setting it aside and rescuing what is readable", problems[:3])
        self._close_outbox()
        with self._blame("outbox"):
            aside = set_aside(self._outbox_path)
        items, kept = _read_damaged_outbox(aside)
        conn = self._outbox_db()  # a fresh file
        with self._blame("outbox"), write_txn(conn):
            for row in items:
                conn.execute(
                    f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) VALUES (:seq, :client_ref, :payload, :state, :attempts, "
                    ":last_error, :answer, :created_at, :updated_at, :next_attempt_at, :label, :replaced_by, "
                    ":op, :lead_key, :lead_ref, :meta)",
                    row,
                )
            for row in kept:
                conn.execute("INSERT INTO kept (key, value, saved_at) VALUES (:key, :value, :saved_at)", row)
        log.warning("outbox rebuilt: %d item(s) rescued, damaged file kept at %s", len(items), aside)
        return Recovery(outbox_rebuilt=True, rescued=len(items), set_aside=aside)

    # -- kept catalogue and profile -------------------------------------------------------------------------------

    def _save_kept(self, key: str, data: Mapping[str, Any]) -> None:
        value = encode_json(data)
        with self._blame("outbox"):
            conn = self._outbox_db()
            with write_txn(conn):
                conn.execute(
                    "INSERT INTO kept (key, value, saved_at) VALUES (:key, :value, :now) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, saved_at = excluded.saved_at",
                    {"key": key, "value": value, "now": time.time()},
                )

    def _load_kept(self, key: str) -> tuple[dict[str, Any], float] | None:
        with self._blame("outbox"):
            row = (
                self._outbox_db().execute("SELECT value, saved_at FROM kept WHERE key = :key", {"key": key}).fetchone()
            )
        return None if row is None else (json.loads(row[0]), float(row[1]))

    def save_catalog(self, data: Mapping[str, Any]) -> None:
        """Keep the last catalogue so the form's choices work offline."""
        self._save_kept("catalog", data)

    def load_catalog(self) -> dict[str, Any] | None:
        kept = self._load_kept("catalog")
        return None if kept is None else kept[0]

    def catalog_saved_at(self) -> float | None:
        """When the kept catalogue was fetched, so the UI can say how old offline choices are."""
        kept = self._load_kept("catalog")
        return None if kept is None else kept[1]

    def save_profile(self, data: Mapping[str, Any]) -> None:
        """Keep the signed-in user's profile for an offline start (name, role, branch)."""
        self._save_kept("profile", data)

    def load_profile(self) -> dict[str, Any] | None:
        kept = self._load_kept("profile")
        return None if kept is None else kept[0]

    # -- outbox ---------------------------------------------------------------------------------------------------

    def enqueue(self, payload: Mapping[str, Any], client_ref: str | None = None) -> OutboxItem:
        """Queue a typed lead (create_lead); returns once it is committed to disk, so the form may be cleared."""
        return self.enqueue_op(Op.CREATE_LEAD, payload, client_ref=client_ref, lead_key=payload.get("phone"))

    def enqueue_call(
        self, call: Mapping[str, Any], phone: str, meta: Mapping[str, Any] | None = None, client_ref: str | None = None
    ) -> OutboxItem:
        """Queue a log_call about the lead with this phone. A call on a lead still queued here for creation names it
        by ``lead_ref`` (the create's client_ref) and goes after it."""
        if ("lead_id" in call) == ("lead_ref" in call):
            raise ValueError("a call names its lead by lead_id or by lead_ref, not both")
        return self.enqueue_op(
            Op.LOG_CALL, call, client_ref=client_ref, lead_key=phone, lead_ref=call.get("lead_ref"), meta=meta
        )

    def enqueue_op(
        self,
        op: Op,
        payload: Mapping[str, Any],
        *,
        lead_key: str | None,
        lead_ref: str | None = None,
        meta: Mapping[str, Any] | None = None,
        client_ref: str | None = None,
    ) -> OutboxItem:
        """Queue one RPC call; returns once it is committed to disk.

        The client_ref goes inside the payload because the server reads it from there: the store owns the
        idempotency key, so a sender cannot send an item under a ref other than the one it was queued with.
        """
        inside = payload.get("client_ref")
        if client_ref is not None and inside is not None and inside != client_ref:
            raise ValueError("client_ref differs from the payload's client_ref")
        given = client_ref if client_ref is not None else inside
        if given is None:
            ref = str(uuid.uuid4())
        else:
            ref = str(given)
            uuid.UUID(ref)  # the server refuses anything else; fail here, while the CRE still has the form
        body = {**payload, "client_ref": ref}
        extra = dict(meta or {})
        label = outbox_label(body, {"phone": lead_key, **extra})
        now = time.time()
        with self._blame("outbox"):
            conn = self._outbox_db()
            with write_txn(conn):
                cur = conn.execute(
                    _INSERT_ITEM,
                    {
                        "ref": ref,
                        "payload": encode_json(body),
                        "now": now,
                        "label": label,
                        "op": op.value,
                        "lead_key": lead_key,
                        "lead_ref": lead_ref,
                        "meta": encode_json(extra) if extra else None,
                    },
                )
        log.info("queued %s %s", op.value, ref)  # no customer name at INFO
        assert cur.lastrowid is not None
        return dataclasses.replace(
            unsaved_item(op, body, lead_key=lead_key, lead_ref=lead_ref, meta=extra, now=now), seq=cur.lastrowid
        )

    def rpc_params(self, item: OutboxItem) -> dict[str, Any]:
        """The RPC's named parameters for sending `item`.

        A call on a lead this desk created names it by lead_ref; once that create_lead was answered with a lead_id
        (the item is not sent before), the call names the lead_id instead, so it reaches the lead whatever the
        create's outcome was (a new lead, or a new source on a known one). The answer never changes, so every retry
        sends the same payload under the same client_ref.
        """
        payload = dict(item.payload)
        if item.op is Op.LOG_CALL and item.lead_ref is not None and "lead_ref" in payload:
            created = self.get(item.lead_ref)
            lead_id = (created.answer or {}).get("lead_id") if created is not None else None
            if isinstance(lead_id, int):
                del payload["lead_ref"]
                payload["lead_id"] = lead_id
        return {item.op.param: payload}

    def open_items(self, lead_key: str | None = None) -> list[OutboxItem]:
        """Items not yet answered (queued, sending) plus those answered in the last hour, in queue order: what the
        worklist and the banner lay over the cache until the feed brings the server's version. With `lead_key`,
        only the items about that lead."""
        params = {"since": time.time() - 3600, "key": lead_key}
        if lead_key is None:
            # Two indexed reads (the queued rows' partial index, the recent ones by updated_at), not a scan of a
            # history that grows all year.
            sql = (
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE state IN ('queued', 'sending') UNION "
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE updated_at >= :since AND state = 'done' ORDER BY seq"
            )
        else:
            sql = (
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE lead_key = :key "
                "AND (state IN ('queued', 'sending') OR (state = 'done' AND updated_at >= :since)) ORDER BY seq"
            )
        with self._blame("outbox"):
            rows = self._outbox_db().execute(sql, params).fetchall()
        return [_item(r) for r in rows]

    def items_for_lead(self, lead_key: str) -> list[OutboxItem]:
        """Every item this desk holds about one lead (its phone), in queue order: the lead view's own calls."""
        with self._blame("outbox"):
            rows = (
                self._outbox_db()
                .execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE lead_key = :key ORDER BY seq", {"key": lead_key})
                .fetchall()
            )
        return [_item(r) for r in rows]

    def get(self, client_ref: str) -> OutboxItem | None:
        with self._blame("outbox"):
            row = self._outbox_db().execute(_SELECT_ITEM, {"ref": client_ref}).fetchone()
        return None if row is None else _item(row)

    def next_due(self, now: float) -> OutboxItem | None:
        """The oldest queued item whose backoff has expired. Parked items are not queued, so they never block."""
        with self._blame("outbox"):
            row = self._outbox_db().execute(_NEXT_DUE, {"now": now}).fetchone()
        return None if row is None else _item(row)

    def earliest_due(self) -> float | None:
        """When the next sendable item becomes due, so the drain loop sleeps exactly that long (None: nothing to
        send). Items held behind an earlier one of their lead do not count: they wait for it, not for a time."""
        with self._blame("outbox"):
            row = self._outbox_db().execute(_EARLIEST_DUE).fetchone()
        return None if row[0] is None else float(row[0])

    def _transition(self, client_ref: str, sql: str, params: dict[str, Any], allowed: tuple[OutboxState, ...]) -> None:
        """Run one guarded UPDATE; when it matched nothing, say why (unknown ref or wrong state)."""
        with self._blame("outbox"):
            conn = self._outbox_db()
            with write_txn(conn):
                changed = conn.execute(sql, {**params, "ref": client_ref, "now": time.time()}).rowcount
                if changed:
                    return
                row = conn.execute("SELECT state FROM outbox WHERE client_ref = :ref", {"ref": client_ref}).fetchone()
        if row is None:
            raise OutboxStateError(f"no outbox item {client_ref}")
        raise OutboxStateError(
            f"outbox item {client_ref} is {row[0]}, expected {' or '.join(s.value for s in allowed)}"
        )

    def mark_sending(self, client_ref: str) -> None:
        """Claim a queued item for one send; `reset_sending` undoes claims a crash left behind."""
        self._transition(
            client_ref,
            "UPDATE outbox SET state = 'sending', updated_at = :now WHERE client_ref = :ref AND state = 'queued'",
            {},
            (OutboxState.QUEUED,),
        )

    def mark_done(self, client_ref: str, answer: Mapping[str, Any]) -> None:
        self._transition(
            client_ref,
            "UPDATE outbox SET state = 'done', answer = :answer, last_error = NULL, attempts = attempts + 1, "
            "updated_at = :now WHERE client_ref = :ref AND state = 'sending'",
            {"answer": encode_json(answer)},
            (OutboxState.SENDING,),
        )

    def mark_retry(self, client_ref: str, error: str, next_attempt_at: float) -> None:
        """A send failed for a reason that may pass (network, 5xx): back in the queue, not before next_attempt_at."""
        self._transition(
            client_ref,
            "UPDATE outbox SET state = 'queued', last_error = :error, attempts = attempts + 1, "
            "next_attempt_at = :next, updated_at = :now WHERE client_ref = :ref AND state = 'sending'",
            {"error": error, "next": next_attempt_at},
            (OutboxState.SENDING,),
        )

    def mark_parked(self, client_ref: str, error: str, answer: Mapping[str, Any] | None = None) -> None:
        """The server refused the lead (or it cannot be sent as is): keep it, with the reason, for the CRE."""
        self._transition(
            client_ref,
            # attempts counts finished sends: parking a queued item (refused before sending) is not one.
            "UPDATE outbox SET state = 'parked', last_error = :error, answer = :answer, "
            "attempts = attempts + (state = 'sending'), updated_at = :now "
            "WHERE client_ref = :ref AND state IN ('queued', 'sending')",
            {"error": error, "answer": None if answer is None else encode_json(answer)},
            (OutboxState.QUEUED, OutboxState.SENDING),
        )

    def requeue(self, client_ref: str, payload: Mapping[str, Any] | None = None) -> OutboxItem:
        """Resend a parked lead, edited or not; returns the item that will be sent.

        Unchanged payload: the same item goes back in the queue under the same client_ref (a replay is harmless).
        Changed payload: the server refuses a known client_ref with a different payload, so the edit is queued as a
        new item with a new client_ref, and the parked one is marked `replaced` (kept, pointing at its successor).
        """
        now = time.time()
        with self._blame("outbox"):
            conn = self._outbox_db()
            with write_txn(conn):
                row = conn.execute(_SELECT_ITEM, {"ref": client_ref}).fetchone()
                if row is None:
                    raise OutboxStateError(f"no outbox item {client_ref}")
                old = _item(row)
                if old.state is not OutboxState.PARKED:
                    raise OutboxStateError(f"outbox item {client_ref} is {old.state.value}, expected parked")
                if payload is None or _without_ref(payload) == _without_ref(old.payload):
                    conn.execute(
                        "UPDATE outbox SET state = 'queued', attempts = 0, last_error = NULL, answer = NULL, "
                        "next_attempt_at = :now, updated_at = :now WHERE client_ref = :ref",
                        {"ref": client_ref, "now": now},
                    )
                    new_ref = client_ref
                else:
                    new_ref = str(uuid.uuid4())
                    body = {**_without_ref(payload), "client_ref": new_ref}
                    lead_key = body.get("phone", old.lead_key) if old.op is Op.CREATE_LEAD else old.lead_key
                    conn.execute(
                        _INSERT_ITEM,
                        {
                            "ref": new_ref,
                            "payload": encode_json(body),
                            "now": now,
                            "label": outbox_label(body, {"phone": lead_key, **old.meta}),
                            "op": old.op.value,
                            "lead_key": lead_key,
                            "lead_ref": old.lead_ref,
                            "meta": encode_json(old.meta) if old.meta else None,
                        },
                    )
                    conn.execute(
                        "UPDATE outbox SET state = 'replaced', replaced_by = :new, updated_at = :now "
                        "WHERE client_ref = :ref",
                        {"ref": client_ref, "new": new_ref, "now": now},
                    )
                    # Calls waiting for this lead's creation now wait for the edited create (never sent yet: they
                    # were held, so their payload may still change under their client_ref), and move behind it in
                    # the queue, in their order: otherwise each would hold the other.
                    waiting = conn.execute(
                        "SELECT client_ref FROM outbox WHERE lead_ref = :ref AND state = 'queued' ORDER BY seq",
                        {"ref": client_ref},
                    ).fetchall()
                    for (dependent,) in waiting:
                        conn.execute(
                            "UPDATE outbox SET seq = (SELECT max(seq) FROM outbox) + 1, lead_ref = :new, "
                            "lead_key = :key, payload = json_set(payload, '$.lead_ref', :new), updated_at = :now "
                            "WHERE client_ref = :dep",
                            {"dep": dependent, "new": new_ref, "key": lead_key, "now": now},
                        )
                item = _item(conn.execute(_SELECT_ITEM, {"ref": new_ref}).fetchone())
        log.info("requeued lead %s as %s", client_ref, new_ref)
        return item

    def discard(self, client_ref: str) -> None:
        """The CRE drops a parked item. Kept as `discarded`: nothing typed is deleted silently. Calls queued on a
        lead whose creation is discarded can never be sent: they are parked with that reason, for the CRE to see."""
        self._transition(
            client_ref,
            "UPDATE outbox SET state = 'discarded', updated_at = :now WHERE client_ref = :ref AND state = 'parked'",
            {},
            (OutboxState.PARKED,),
        )
        with self._blame("outbox"):
            conn = self._outbox_db()
            with write_txn(conn):
                conn.execute(
                    "UPDATE outbox SET state = 'parked', last_error = :why, updated_at = :now "
                    "WHERE lead_ref = :ref AND state = 'queued'",
                    {"ref": client_ref, "now": time.time(), "why": "The new lead this call was about was discarded."},
                )

    def reset_sending(self) -> int:
        """On start: items a crash left `sending` go back to the queue (the server dedupes a replay by client_ref)."""
        with self._blame("outbox"):
            conn = self._outbox_db()
            with write_txn(conn):
                n = conn.execute(
                    "UPDATE outbox SET state = 'queued', updated_at = :now WHERE state = 'sending'",
                    {"now": time.time()},
                ).rowcount
        if n:
            log.info("%d outbox item(s) left sending by the last run are queued again", n)
        return n

    def items(self, since: float | None = None) -> list[OutboxItem]:
        """Items for the "this shift" list, in queue order.

        Items created at or after `since`, plus every item still open (queued, sending, parked) however old: a lead
        from yesterday that still waits for the server or for the CRE's decision belongs on today's list.
        """
        with self._blame("outbox"):
            if since is None:
                rows = self._outbox_db().execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY seq").fetchall()
            else:
                rows = (
                    self._outbox_db()
                    .execute(
                        f"SELECT {_OUTBOX_COLUMNS} FROM outbox "
                        "WHERE created_at >= :since OR state IN ('queued', 'sending', 'parked') ORDER BY seq",
                        {"since": since},
                    )
                    .fetchall()
                )
        return [_item(r) for r in rows]

    def pending_count(self) -> int:
        """Leads waiting to be sent (queued or sending) — the status bar's queue count."""
        with self._blame("outbox"):
            row = self._outbox_db().execute("SELECT count(*) FROM outbox WHERE state IN ('queued', 'sending')")
            return int(row.fetchone()[0])

    def parked_count(self) -> int:
        """Leads the server refused that wait for the CRE."""
        with self._blame("outbox"):
            return int(self._outbox_db().execute("SELECT count(*) FROM outbox WHERE state = 'parked'").fetchone()[0])

    def oldest_pending_at(self) -> float | None:
        """Creation time of the oldest lead still waiting to be sent, for "oldest queued 12 min ago"."""
        with self._blame("outbox"):
            row = (
                self._outbox_db()
                .execute("SELECT min(created_at) FROM outbox WHERE state IN ('queued', 'sending')")
                .fetchone()
            )
        return None if row[0] is None else float(row[0])


def _read_damaged_outbox(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Whatever outbox and kept rows can still be read; row by row when a whole-table read fails."""
    items: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=1)
    except sqlite3.Error:
        log.warning("damaged outbox cannot be opened at all; nothing rescued", exc_info=True)
        return items, kept
    try:
        columns = _OUTBOX_COLUMNS
        try:
            conn.execute("SELECT op, lead_key, lead_ref, meta FROM outbox LIMIT 0")
        except sqlite3.Error:
            columns = _BASE_COLUMNS  # a file from before the outbox held operations (or its schema is unreadable)
        names = [c.strip() for c in columns.split(",")]
        try:
            rows = conn.execute(f"SELECT {columns} FROM outbox ORDER BY seq").fetchall()
        except sqlite3.Error:
            rows = []
            try:
                top = conn.execute("SELECT max(seq) FROM outbox").fetchone()[0] or 0
            except sqlite3.Error:
                top = 0
            for seq in range(1, top + 1):
                try:
                    one = conn.execute(f"SELECT {columns} FROM outbox WHERE seq = :seq", {"seq": seq}).fetchone()
                except sqlite3.Error:
                    continue
                if one is not None:
                    rows.append(one)
        for row in rows:
            values: dict[str, Any] = {"op": Op.CREATE_LEAD.value, "lead_key": None, "lead_ref": None, "meta": None}
            values.update(zip(names, row, strict=True))
            try:
                payload = json.loads(values["payload"])
                OutboxState(values["state"])
                Op(values["op"])
                if values["lead_key"] is None and isinstance(payload, dict):
                    values["lead_key"] = payload.get("phone")
            except (TypeError, ValueError):
                log.warning("outbox row %s unreadable; left in the damaged file", values.get("seq"))
                continue
            if values["state"] == OutboxState.SENDING:
                values["state"] = OutboxState.QUEUED.value
            items.append(values)
        try:
            for key, value, saved_at in conn.execute("SELECT key, value, saved_at FROM kept"):
                kept.append({"key": key, "value": value, "saved_at": saved_at})
        except sqlite3.Error:
            kept.clear()  # the catalogue comes back from the server; not worth a partial copy
    finally:
        conn.close()
    return items, kept
