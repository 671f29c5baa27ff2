"""The e-mail outbox worker: sends the mails `create_lead` queued, at most once after a successful send.

Each mail is claimed with `FOR UPDATE SKIP LOCKED` inside a transaction that stays open while the SMTP exchange runs
and commits `sent` right after it. Two workers never hold the same row; a failed send goes back to `pending` with
exponential backoff (and `failed` after MAX_ATTEMPTS); a mail that cannot be built or encoded is `failed` at once,
with the reason in `last_error`. If the process dies between the SMTP server's "250 OK" and the
commit, the row is still pending and will be sent again: that window is unavoidable without an idempotent mail API,
so each mail carries a stable Message-ID (`<outbox-N@...>`) that mail systems use to drop the copy."""

from __future__ import annotations

import logging
import random
import smtplib
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import psycopg

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BASE_BACKOFF = 5.0  # seconds; doubles per attempt, capped at one hour

_CLAIM = """
select id, to_email, subject, body, attempts
  from email_outbox
 where status = 'pending' and next_attempt_at <= now()
 order by next_attempt_at, id
 limit 1
   for update skip locked
"""
_PARK = "update email_outbox set status = 'failed', attempts = attempts + 1, last_error = %s where id = %s"
_SENT = "update email_outbox set status = 'sent', sent_at = now(), attempts = attempts + 1 where id = %s"
_RETRY = """
update email_outbox
   set attempts = attempts + 1, last_error = %s,
       status = case when attempts + 1 >= %s then 'failed' else 'pending' end,
       next_attempt_at = now() + make_interval(secs => %s)
 where id = %s
"""


@dataclass
class SmtpTarget:
    host: str
    port: int
    sender: str = "cre-desk@localhost"
    timeout: float = 10.0

    @classmethod
    def parse(cls, text: str) -> SmtpTarget:
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--smtp must be HOST:PORT, not {text!r}")
        return cls(host, int(port))


def backoff_seconds(attempts: int) -> float:
    base = min(BASE_BACKOFF * (2 ** max(attempts - 1, 0)), 3600.0)
    return base * random.uniform(0.8, 1.2)


class MailWorker:
    """Drains `email_outbox`. Runs in its own thread with its own connection (as service_role)."""

    def __init__(self, conninfo: str, smtp: SmtpTarget, poll_interval: float = 1.0) -> None:
        self._conninfo = conninfo
        self._smtp = smtp
        self._poll = poll_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send_one(self, conn: psycopg.Connection[Any]) -> bool:
        """Claim and send one due mail; False when none is due.

        A mail that cannot be built or that the SMTP library refuses (a line break in the subject from a customer's
        name, an address it cannot encode) is parked as `failed` with the reason, in the claim's transaction, so the
        rest still go out and a restarted worker does not claim it first again. Only a refusal or outage of the SMTP
        server is retried with backoff."""
        with conn.transaction():
            conn.execute("select set_config('role', 'service_role', true)")
            row = conn.execute(_CLAIM).fetchone()
            if row is None:
                return False
            mail_id, to_email, subject, body, attempts = row
            try:
                msg = self._message(mail_id, to_email, subject, body)
            except Exception as exc:  # the row's text, not the moment: no retry can help
                self._park(conn, mail_id, f"cannot build the message: {exc}")
                return True
            try:
                with smtplib.SMTP(self._smtp.host, self._smtp.port, timeout=self._smtp.timeout) as smtp:
                    smtp.send_message(msg)
            except (OSError, smtplib.SMTPException) as exc:
                delay = backoff_seconds(attempts + 1)
                log.warning("mail %s not sent (attempt %s): %s; retry in %.0fs", mail_id, attempts + 1, exc, delay)
                conn.execute(_RETRY, (str(exc)[:500], MAX_ATTEMPTS, delay, mail_id))
                return True
            except Exception as exc:  # refused by the library while sending (e.g. an unencodable address)
                self._park(conn, mail_id, f"cannot send the message: {exc!r}")
                return True
            conn.execute(_SENT, (mail_id,))
            return True

    def _message(self, mail_id: int, to_email: str, subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._smtp.sender
        msg["To"] = to_email
        msg["Subject"] = subject
        msg["Message-ID"] = f"<outbox-{mail_id}@cre-desk>"
        msg.set_content(body)
        return msg

    @staticmethod
    def _park(conn: psycopg.Connection[Any], mail_id: int, reason: str) -> None:
        log.warning("mail %s parked as failed: %s", mail_id, reason)
        conn.execute(_PARK, (reason[:500], mail_id))

    def drain(self, conn: psycopg.Connection[Any]) -> int:
        n = 0
        while not self._stop.is_set() and self.send_one(conn):
            n += 1
        return n

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    while not self._stop.is_set():
                        self.drain(conn)
                        self._stop.wait(self._poll)
            except psycopg.Error as exc:
                log.warning("mail worker lost its database connection: %s", exc)
                self._stop.wait(2.0)
            except Exception:  # a bug must not end the thread: every later mail would wait forever
                log.exception("mail worker: unexpected error; going on")
                self._stop.wait(2.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mail-worker", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
