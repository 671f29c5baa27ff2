"""The PS e-mail outbox is sent by the worker exactly once, also with two workers racing, and retried with backoff."""

from __future__ import annotations

import socket
import threading
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from serverproc import Api, new_lead, phone_for

from server_contract.mailer import MailWorker, SmtpTarget


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Any:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def _queue_mails(api: Api, n: int) -> None:
    token = api.token("cre1@demo.local")
    for i in range(n):
        r = api.rpc("create_lead", token, lead=new_lead(phone_for(30_000 + i), ps_email="ps1@demo.local"))
        assert r.json()["outcome"] == "created"


def _worker_conninfo(server: Any) -> str:
    return psycopg.conninfo.make_conninfo(server.database_url, user="authenticator")


def test_two_workers_send_each_mail_once(api: Api, server, clean_db: psycopg.Connection[Any], smtp):
    controller, inbox = smtp
    _queue_mails(api, 30)
    target = SmtpTarget("127.0.0.1", controller.port)
    workers = [MailWorker(_worker_conninfo(server), target) for _ in range(2)]
    counts: list[int] = []

    def run(worker: MailWorker) -> None:
        with psycopg.connect(_worker_conninfo(server), autocommit=True) as conn:
            counts.append(worker.drain(conn))

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 30
    assert len(inbox.messages) == 30
    assert all(e.rcpt_tos == ["ps1@demo.local"] for e in inbox.messages)
    ids = [e.content.decode().split("Message-ID: ")[1].split()[0] for e in inbox.messages]
    assert len(set(ids)) == 30
    assert clean_db.execute("select count(*) from email_outbox where status = 'sent'").fetchone() == (30,)
    # A later pass finds nothing to send: sent mails are never sent again.
    with psycopg.connect(_worker_conninfo(server), autocommit=True) as conn:
        assert workers[0].drain(conn) == 0
    assert len(inbox.messages) == 30


@pytest.mark.expected_log_warnings
def test_failed_send_is_retried_later_and_then_sent_once(api: Api, server, clean_db, smtp):
    controller, inbox = smtp
    _queue_mails(api, 1)
    down = MailWorker(_worker_conninfo(server), SmtpTarget("127.0.0.1", _free_port(), timeout=2))
    with psycopg.connect(_worker_conninfo(server), autocommit=True) as conn:
        assert down.drain(conn) == 1  # one attempt made
        row = clean_db.execute(
            "select status, attempts, next_attempt_at > now(), last_error is not null from email_outbox"
        ).fetchone()
        assert row == ("pending", 1, True, True)
        assert down.drain(conn) == 0  # backing off: not due yet
        clean_db.execute("update email_outbox set next_attempt_at = now()")
        up = MailWorker(_worker_conninfo(server), SmtpTarget("127.0.0.1", controller.port))
        assert up.drain(conn) == 1
    assert len(inbox.messages) == 1
    assert clean_db.execute("select status, attempts from email_outbox").fetchone() == ("sent", 2)


def test_worker_thread_drains_in_the_background(api: Api, server, clean_db, smtp):
    controller, inbox = smtp
    worker = MailWorker(_worker_conninfo(server), SmtpTarget("127.0.0.1", controller.port), poll_interval=0.05)
    worker.start()
    try:
        _queue_mails(api, 3)
        for _ in range(200):
            if len(inbox.messages) == 3:
                break
            threading.Event().wait(0.05)
    finally:
        worker.stop()
    assert len(inbox.messages) == 3


def _wait_until(condition: Any, seconds: float = 20.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        threading.Event().wait(0.05)
    return bool(condition())


@pytest.mark.expected_log_warnings
def test_a_mail_that_cannot_be_built_is_parked_and_the_rest_go_out(server, clean_db: psycopg.Connection[Any], smtp):
    """A line break or U+2028 in a customer's name reaches the subject (rows written before 005 refused them): the
    worker parks that mail with the reason and goes on; a restarted worker does not claim it again."""
    controller, inbox = smtp
    subjects = ["New lead A: Normal Before", "New lead B: Ravi\nKumar", "New lead C: Ravi\rKumar",
                "New lead D: Ravi\u2028Kumar", "New lead E: Normal After"]  # fmt: skip
    for subject in subjects:
        clean_db.execute(
            "insert into email_outbox (to_email, subject, body) values ('ps1@demo.local', %s, 'body')", (subject,)
        )
    target = SmtpTarget("127.0.0.1", controller.port)
    worker = MailWorker(_worker_conninfo(server), target, poll_interval=0.05)
    worker.start()
    try:
        assert _wait_until(lambda: len(inbox.messages) == 2), len(inbox.messages)
        assert worker.alive
    finally:
        worker.stop()
    sent = sorted(e.content.decode().split("Subject: ")[1].split("\n")[0].strip() for e in inbox.messages)
    assert sent == ["New lead A: Normal Before", "New lead E: Normal After"]
    rows = clean_db.execute("select subject, status, attempts, last_error from email_outbox order by id").fetchall()
    parked = [(r[1], r[2]) for r in rows if r[0] not in sent]
    assert parked == [("failed", 1)] * 3
    assert all("cannot build the message" in r[3] for r in rows if r[0] not in sent)
    # A restarted worker sends what comes next and leaves the parked ones parked.
    clean_db.execute("insert into email_outbox (to_email, subject, body) values ('ps1@demo.local', 'New lead F', 'b')")
    again = MailWorker(_worker_conninfo(server), target)
    with psycopg.connect(_worker_conninfo(server), autocommit=True) as conn:
        assert again.drain(conn) == 1
    assert len(inbox.messages) == 3
    assert clean_db.execute(
        "select count(*) from email_outbox where status = 'failed' and attempts = 1"
    ).fetchone() == (3,)
