"""The client on a corporate network (issue 13) and against a wrong clock or an insecure address (issue 11):
TLS trusted through the OS store, an untrusted certificate told apart from an outage, proxies from the environment
or a setting but never for loopback, https:// required, the token's life from the server's expires_in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from netfaults import RecordingProxy, TlsFront, dead_port, self_signed_cert
from serverproc import new_lead, phone_for
from test_sync import wait_for

from crm_desktop.core.api import (
    ApiClient,
    CertificateNotTrusted,
    InsecureServerUrl,
    Retry,
    check_server_url,
    is_loopback_url,
)
from crm_desktop.core.models import OutboxState
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine


@pytest.fixture
def tls_front(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TlsFront, Path]]:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    cert, key = self_signed_cert(tmp_path)
    front = TlsFront(cert, key, server.port)
    yield front, cert
    front.close()


def _ssl_context_of(client: ApiClient) -> Any:
    return client._http._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_a_certificate_trusted_only_by_the_system_store_is_accepted(tls_front, server, monkeypatch):
    import truststore

    front, cert = tls_front
    # OpenSSL's default verify path (what truststore uses on Linux; the Windows store on Windows) now holds the
    # certificate; certifi's bundle never will.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    client = ApiClient(front.url, server.anon_key)
    try:
        assert isinstance(_ssl_context_of(client), truststore.SSLContext)
        client.login("cre1@demo.local", "demo1234")
        assert client.rpc("my_profile")["role"] == "cre"
    finally:
        client.close()


@pytest.mark.expected_log_warnings
def test_an_untrusted_certificate_says_so_and_leads_stay_queued(tls_front, server, clean_db, tmp_path: Path):
    front, _cert = tls_front
    client = ApiClient(front.url, server.anon_key)
    with pytest.raises(CertificateNotTrusted, match="certificate is not trusted on this computer"):
        client.login("cre1@demo.local", "demo1234")
    # The desk started offline with the typed password: sending meets the certificate, not "offline".
    client.sign_in_later("cre1@demo.local", "demo1234")
    path = tmp_path / "desk.sqlite3"
    Store.open_or_rebuild(path)[0].close()
    engine = SyncEngine(client, path, poll_interval=0.3, backoff_base=0.05, backoff_max=0.5)
    states: list[tuple[str, str]] = []
    engine.listeners.connection.append(lambda state, detail: states.append((state, detail)))
    store = Store(path)
    try:
        item = store.enqueue(new_lead(phone_for(3101)))
        engine.start()
        wait_for(lambda: any(s == "untrusted" for s, _ in states), what="the certificate state")
        assert "ask IT" in next(d for s, d in states if s == "untrusted").replace("Ask IT", "ask IT")
        assert "offline" not in [s for s, _ in states]
        wait_for(lambda: "certificate" in (store.get(item.client_ref).last_error or ""),  # type: ignore[union-attr]
                 what="the send attempt's reason")  # fmt: skip
        after = store.get(item.client_ref)
        assert after is not None and after.state in (OutboxState.QUEUED, OutboxState.SENDING)  # never parked
        assert clean_db.execute("select count(*) from leads").fetchone() == (0,)
    finally:
        engine.stop()
        store.close()
        client.close()


def test_loopback_is_never_proxied(server, clean_db, monkeypatch):
    dead = f"http://127.0.0.1:{dead_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    client = ApiClient(server.url, server.anon_key)
    try:
        client.login("cre1@demo.local", "demo1234")
        assert client.rpc("my_profile")["role"] == "cre"
    finally:
        client.close()
    # Also when the proxy is the desk's own setting.
    client = ApiClient(server.url, server.anon_key, proxy=dead)
    try:
        client.login("cre1@demo.local", "demo1234")
    finally:
        client.close()


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    p = RecordingProxy()
    yield p
    p.close()


def test_a_remote_server_goes_through_the_proxy_setting_or_https_proxy(proxy: RecordingProxy, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_PROXY",
                 "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    # The setting: the request for the remote server goes to the proxy (which hangs up: a Retry, leads stay queued).
    client = ApiClient("https://desk.example.com", "anon", proxy=proxy.url)
    with pytest.raises(Retry):
        client.login("cre1@demo.local", "demo1234")
    client.close()
    assert proxy.requests == ["CONNECT desk.example.com:443 HTTP/1.1"]
    # The environment (HTTPS_PROXY; on Windows, the system proxy reaches httpx the same way).
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    client = ApiClient("https://desk.example.com", "anon")
    with pytest.raises(Retry):
        client.login("cre1@demo.local", "demo1234")
    client.close()
    assert proxy.requests[-1] == "CONNECT desk.example.com:443 HTTP/1.1" and len(proxy.requests) == 2


def test_https_is_required_for_a_server_that_is_not_on_this_computer():
    for url in ("http://desk.example.com", "http://10.1.2.3:8000", "ftp://desk.example.com", "desk.example.com"):
        with pytest.raises(InsecureServerUrl, match="https://"):
            ApiClient(url, "anon")
    assert check_server_url("http://desk.example.com", allow_http=True) == "http://desk.example.com"
    for url in ("http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:80", "https://desk.example.com"):
        ApiClient(url, "anon").close()
    assert is_loopback_url("http://127.8.9.10") and not is_loopback_url("http://128.0.0.1")


class CountingTransport(httpx.HTTPTransport):
    """Real HTTP that counts token requests (sign-in and refresh)."""

    def __init__(self) -> None:
        super().__init__()
        self.token_requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/v1/token"):
            self.token_requests += 1
        return super().handle_request(request)


@pytest.mark.parametrize("skew", [7200.0, -7200.0])
def test_a_clock_hours_off_does_not_refresh_the_token_per_call(server, clean_db, skew: float):
    transport = CountingTransport()
    client = ApiClient(server.url, server.anon_key, transport=transport, clock=lambda: time.time() + skew)
    try:
        client.login("cre1@demo.local", "demo1234")
        for _ in range(20):
            client.rpc("my_profile")
        assert transport.token_requests == 1  # the sign-in only
        session = client.session
        assert session is not None
        # The token's life counts from when the answer arrived, on this computer's clock.
        assert 0 < session.expires_at - (time.time() + skew) <= 3600 + 5
    finally:
        client.close()


def test_signing_in_through_an_untrusted_certificate_tells_the_person_why(tls_front, server, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    from crm_desktop.ui.app import DeskApp, parse_args
    from crm_desktop.ui.settings import Settings

    monkeypatch.setenv("CRE_DESK_DATA_DIR", str(tmp_path / "data"))
    front, _cert = tls_front
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    desk = DeskApp(parse_args([]), settings)
    with pytest.raises(CertificateNotTrusted, match="not trusted on this computer"):
        desk._login_attempt(front.url, server.anon_key, "cre1@demo.local", "demo1234")
