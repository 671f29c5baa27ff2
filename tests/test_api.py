"""The API client against the real reference server, with faults injected at the HTTP transport."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import keyring
import pytest
from serverproc import new_lead, phone_for

from crm_desktop.core.api import STALE_RETRIES, ApiClient, AuthExpired, KeyringTokenStore, LoginFailed, Rejected, Retry


def client_for(server: Any, **kwargs: Any) -> ApiClient:
    return ApiClient(server.url, server.anon_key, **kwargs)


def test_login_and_rpc(server, clean_db):
    client = client_for(server)
    session = client.login("cre1@demo.local", "demo1234")
    assert session.email == "cre1@demo.local" and session.expires_at > 0
    assert client.rpc("my_profile")["role"] == "cre"
    answer = client.rpc("create_lead", {"lead": new_lead(phone_for(700))})
    assert answer["outcome"] == "created"
    client.close()


def test_wrong_password_is_a_login_failure(server):
    client = client_for(server)
    with pytest.raises(LoginFailed, match="Wrong e-mail or password"):
        client.login("cre1@demo.local", "nope")
    with pytest.raises(AuthExpired):
        client.rpc("catalog")  # not signed in
    client.close()


def test_business_errors_are_rejected_with_the_servers_code(server, clean_db):
    client = client_for(server)
    client.login("cre1@demo.local", "demo1234")
    with pytest.raises(Rejected) as info:
        client.rpc("create_lead", {"lead": new_lead("+915876543210")})
    assert info.value.code == "invalid_phone" and info.value.status == 422
    assert "Indian mobile" in str(info.value)
    with pytest.raises(Rejected) as info:
        client.rpc("dashboard_summary", {"date_from": "2026-01-01", "date_to": "2026-01-02"})
    assert info.value.status == 403
    client.close()


def test_a_stopped_server_is_retry(server):
    client = ApiClient("http://127.0.0.1:9", server.anon_key)  # nothing listens on the discard port
    with pytest.raises(Retry):
        client.login("cre1@demo.local", "demo1234")
    client.close()


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (lambda req: httpx.Response(503, json={"message": "down"}), Retry),
        (lambda req: httpx.Response(502, text="<html>bad gateway</html>"), Retry),
        (lambda req: httpx.Response(504), Retry),
        (lambda req: httpx.Response(429), Retry),
        (lambda req: httpx.Response(500, json={"code": "40001", "message": "could not serialize"}), Retry),
        (lambda req: httpx.Response(500, json={"code": "40P01", "message": "deadlock detected"}), Retry),
        (lambda req: httpx.Response(500, json={"code": "57014", "message": "statement timeout"}), Retry),
        (lambda req: httpx.Response(200, text="<html>captive portal</html>"), Retry),
        (lambda req: httpx.Response(409, json={"code": "client_ref_reused", "message": "used"}), Rejected),
        (lambda req: httpx.Response(422, json={"code": "invalid_phone", "message": "bad"}), Rejected),
    ],
)
def test_failure_classification(server, fault, expected):
    """Faults injected at the transport; the first call (sign-in) goes to the real server."""
    real = httpx.HTTPTransport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/auth/"):
            return real.handle_request(request)
        return fault(request)

    client = client_for(server, transport=httpx.MockTransport(handler))
    try:
        client.login("cre1@demo.local", "demo1234")
        with pytest.raises(expected):
            client.rpc("catalog")
        if fault(httpx.Request("POST", server.url)).status_code == 200:
            # An unreadable 200 comes back as text: the reader (Store.apply_feed_page) is the one that refuses it.
            assert client.rpc_text("catalog") == "<html>captive portal</html>"
        else:
            with pytest.raises(expected):  # the undecoded variant classifies every failure the same way
                client.rpc_text("catalog")
    finally:
        client.close()
        real.close()


def test_rpc_text_hands_back_the_servers_json_undecoded(server, clean_db):
    client = client_for(server)
    try:
        client.login("cre1@demo.local", "demo1234")
        client.rpc("create_lead", {"lead": new_lead(phone_for(701))})
        text = client.rpc_text("lead_changes", {"since": 0, "max_rows": 10})
        assert isinstance(text, str)
        assert json.loads(text) == client.rpc("lead_changes", {"since": 0, "max_rows": 10})
        with pytest.raises(Rejected) as info:
            client.rpc_text("lead_changes", {"since": -1})
        assert info.value.code == "invalid_cursor"
    finally:
        client.close()


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.RemoteProtocolError("dropped")]
)
def test_network_faults_are_retry(server, exc):
    real = httpx.HTTPTransport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/auth/"):
            return real.handle_request(request)
        raise exc

    client = client_for(server, transport=httpx.MockTransport(handler))
    try:
        client.login("cre1@demo.local", "demo1234")
        with pytest.raises(Retry):
            client.rpc("catalog")
    finally:
        client.close()
        real.close()


@pytest.mark.parametrize("stale", [1, STALE_RETRIES, STALE_RETRIES + 1])
def test_kept_alive_connections_closed_meanwhile_are_passed_over(server, stale: int):
    """The server (after 5 s idle) or a gateway closes pooled connections; a request that meets one is sent again,
    past up to STALE_RETRIES of them in a row (bench_link's 10 desks met two). Past that, the usual Retry."""
    real = httpx.HTTPTransport()
    met = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/catalog") and len(met) < stale:
            met.append(request.url.path)
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return real.handle_request(request)

    client = client_for(server, transport=httpx.MockTransport(handler))
    try:
        client.login("cre1@demo.local", "demo1234")
        if stale <= STALE_RETRIES:
            assert client.rpc("catalog")["cres"]
        else:
            with pytest.raises(Retry):
                client.rpc("catalog")
        assert len(met) == stale
    finally:
        client.close()
        real.close()


def test_a_401_refreshes_once_and_retries(server):
    client = client_for(server)
    first = client.login("cre1@demo.local", "demo1234")
    assert client.session is not None
    client.session.access_token = "revoked.or.expired"  # what the server will refuse with 401
    assert client.rpc("my_profile")["email"] == "cre1@demo.local"
    assert client.session.refresh_token != first.refresh_token  # rotated
    client.close()


def test_proactive_refresh_before_expiry(server):
    now = [0.0]
    client = client_for(server, clock=lambda: now[0])
    session = client.login("cre1@demo.local", "demo1234")
    now[0] = session.expires_at - 30  # inside the refresh margin
    client.rpc("my_profile")
    assert client.session is not None and client.session.refresh_token != session.refresh_token
    client.close()


def test_two_threads_needing_a_refresh_share_one(server):
    """Refresh tokens are single use: two refreshes with the same token would revoke the session."""
    client = client_for(server)
    client.login("cre2@demo.local", "demo1234")
    assert client.session is not None
    client.session.access_token = "stale"
    barrier = threading.Barrier(8)
    results: list[Any] = []
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            results.append(client.rpc("my_profile")["email"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == ["cre2@demo.local"] * 8
    # The session survived: a further explicit refresh still works (a reused token would have killed it).
    client.refresh()
    assert client.rpc("my_profile")["email"] == "cre2@demo.local"
    client.close()


def test_refused_refresh_means_sign_in_again(server, db):
    client = client_for(server)
    session = client.login("cre1@demo.local", "demo1234")
    other = client_for(server)
    other.login("cre1@demo.local", "demo1234")
    # Use the refresh token elsewhere first (e.g. a copied profile): ours is now spent.
    r = httpx.post(
        server.url + "/auth/v1/token",
        params={"grant_type": "refresh_token"},
        headers={"apikey": server.anon_key},
        json={"refresh_token": session.refresh_token},
    )
    assert r.status_code == 200
    # ... longer ago than the server's reuse interval (a retry within it gets the new token, as from GoTrue).
    db.execute(
        "update auth.refresh_tokens set revoked_at = revoked_at - interval '1 minute'"
        " where token_hash = encode(sha256(convert_to(%s, 'UTF8')), 'hex')",
        (session.refresh_token,),
    )
    with pytest.raises(AuthExpired):
        client.refresh()
    assert not client.signed_in
    client.close()
    other.close()


def test_signing_out_of_one_desk_leaves_the_same_cres_other_desk_signed_in(server):
    here, there = client_for(server), client_for(server)
    here.login("cre1@demo.local", "demo1234")
    there.login("cre1@demo.local", "demo1234")
    here.logout()
    assert not here.signed_in
    there.refresh()  # the other desk's session was not ended
    assert there.rpc("my_profile")["email"] == "cre1@demo.local"
    here.close()
    there.close()


def test_silent_sign_in_from_the_keyring(server, memory_keyring):
    store = KeyringTokenStore()
    assert store.available
    client = client_for(server, token_store=store)
    client.login("cre1@demo.local", "demo1234")
    saved = memory_keyring.items[(KeyringTokenStore.service(server.url), "cre1@demo.local")]
    client.close()
    again = client_for(server, token_store=KeyringTokenStore())
    session = again.restore("cre1@demo.local")
    assert session is not None and again.rpc("my_profile")["email"] == "cre1@demo.local"
    # Rotated and saved again; the old token is spent.
    assert memory_keyring.items[(KeyringTokenStore.service(server.url), "cre1@demo.local")] != saved
    again.logout()
    assert (KeyringTokenStore.service(server.url), "cre1@demo.local") not in memory_keyring.items
    again.close()


def test_a_deferred_sign_in_needed_by_many_threads_happens_once(server, memory_keyring):
    """An offline start signs in on the first call that reaches the server; the desk's threads make their calls
    together when it comes back. Two redemptions of the saved (single-use) token would revoke the session."""
    first = client_for(server, token_store=KeyringTokenStore())
    first.login("cre1@demo.local", "demo1234")
    first.close()

    class SlowKeyring(KeyringTokenStore):
        """The OS keyring answering slowly (a locked wallet prompting, a busy D-Bus)."""

        def load(self, server_url: str, email: str) -> str | None:
            time.sleep(0.05)
            return super().load(server_url, email)

    client = client_for(server, token_store=SlowKeyring())
    client.sign_in_later("cre1@demo.local")
    barrier = threading.Barrier(8)
    results: list[Any] = []
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            results.append(client.rpc("my_profile")["email"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == ["cre1@demo.local"] * 8
    client.refresh()  # the session survived: a reused token would have revoked it
    assert client.rpc("my_profile")["email"] == "cre1@demo.local"
    client.close()


def test_calls_during_an_offline_silent_sign_in_are_offline_not_signed_out(server, memory_keyring):
    """While the deferred sign-in waits on a server that is away, every other call is Retry (offline), never
    AuthExpired (which would pause sending and ask for a password), and no half session is left behind."""
    first = client_for(server, token_store=KeyringTokenStore())
    first.login("cre1@demo.local", "demo1234")
    first.close()
    real = httpx.HTTPTransport()
    up = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if not up.is_set():
            time.sleep(0.2)  # a connect that takes a while to fail
            raise httpx.ConnectError("refused")
        return real.handle_request(request)

    client = client_for(server, token_store=KeyringTokenStore(), transport=httpx.MockTransport(handler))
    client.sign_in_later("cre1@demo.local")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            client.rpc("my_profile")
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(errors) == 4 and all(isinstance(e, Retry) for e in errors), errors
        assert client.session is None
        up.set()
        assert client.rpc("my_profile")["email"] == "cre1@demo.local"
    finally:
        client.close()
        real.close()


def test_without_a_keyring_nothing_is_stored_and_the_user_is_told(server):
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        store = KeyringTokenStore()
        assert not store.available and "password" in store.why_unavailable
        client = client_for(server, token_store=store)
        client.login("cre1@demo.local", "demo1234")
        assert client.restore("cre1@demo.local") is None  # nothing was saved
        client.close()
    finally:
        keyring.set_keyring(previous)
