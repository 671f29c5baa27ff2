"""The HTTP client for the server contract (Supabase or the reference server): sign-in, one token refresher, RPC calls
and one classification of every failure.

Every failure of `rpc()` is one of three kinds, because the outbox treats them in three ways:
- `Retry`: the server may well take it later (network down, timeout, 5xx, 429, serialization failure, deadlock,
  statement timeout). The item stays queued and is retried with backoff.
- `AuthExpired`: the session is over (a 401 that one refresh did not cure). Sending pauses until the user signs in.
- `Rejected`: the server looked at the request and refused it (other 4xx). The item is parked with the reason.

Refresh tokens rotate (single use), and a reused one revokes the whole session, so at most one refresh may run at a
time: callers that find a refresh in flight wait for it and use its result instead of starting their own.

The network of a call centre is a corporate one: TLS is checked against the operating system's certificate store
(`truststore`), where IT puts the root of a TLS-inspecting firewall; a certificate that is not trusted is its own
`Retry` (`CertificateNotTrusted`), so leads stay queued and the desk can say what is wrong instead of "offline".
Proxies come from the environment (`HTTPS_PROXY`/`NO_PROXY`, on Windows the system setting) or an explicit setting,
and are never used for this computer's own addresses (the demo server)."""

from __future__ import annotations

import functools
import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(connect=3.0, read=15.0, write=10.0, pool=5.0)
# Refresh this long before the access token expires, so a request never leaves with a token about to die.
REFRESH_MARGIN = 60.0


def _accept_encoding() -> str:
    """zstd first when httpx can decode it (the `zstandard` package, a dependency): the reference server spends about
    a third of gzip's CPU on it for slightly fewer bytes, and this desk half the time decoding (server_contract/
    compress.py). gzip for any other server."""
    try:
        import zstandard  # noqa: F401  (httpx decodes zstd only when this imports)
    except ImportError:  # pragma: no cover - installed with the desk
        return "gzip"
    return "zstd, gzip"


ACCEPT_ENCODING = _accept_encoding()
RETRY_SQLSTATES = {"40001", "40P01", "57014", "53300", "55P03"}


class ApiError(Exception):
    """Base of everything `ApiClient` raises; `str()` is a sentence for the desk."""


class Retry(ApiError):
    """Temporary trouble: try again later. `status` is the HTTP status when there was one; `retry_after` the
    seconds a busy server (429/503) asked for, so a desk can back off instead of joining a stampede."""

    def __init__(self, message: str, *, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class AuthExpired(ApiError):
    """The session cannot be renewed: the user must sign in again."""


class Rejected(ApiError):
    """The server refused the request; `code` is its stable error code (e.g. `invalid_phone`)."""

    def __init__(self, message: str, code: str = "", status: int = 400, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.details = details


class LoginFailed(ApiError):
    """Wrong e-mail or password, or an account that cannot sign in."""


class CertificateNotTrusted(Retry):
    """The server's TLS certificate is not trusted on this computer (typically a firewall that inspects TLS, whose
    root certificate IT has not installed). A Retry: queued leads stay queued, and go once IT has fixed it."""


class InsecureServerUrl(ApiError, ValueError):
    """An `http://` address for a server that is not on this computer (or not http(s) at all)."""


CERT_NOT_TRUSTED = (
    "The server's certificate is not trusted on this computer ({why}). Leads stay queued on this PC. Ask IT to "
    "install the company's root certificate (a firewall that inspects TLS needs it) or to check the server address."
)


def is_loopback_url(url: str) -> bool:
    """True for this computer's own addresses (127.0.0.0/8, ::1, localhost): the demo server and the tests."""
    host = (urlsplit(url.strip()).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str, *, allow_http: bool = False) -> str:
    """The URL, or InsecureServerUrl: tokens and customer data must not cross a network in clear text.

    `http://` is accepted for loopback, or anywhere when the setting `server/allow_http` (IT's, for a server
    behind a trusted network) is on."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InsecureServerUrl(f"The server address must start with https:// (got {url!r}).")
    if parts.scheme == "http" and not allow_http and not is_loopback_url(url):
        raise InsecureServerUrl(
            f"The server address must start with https:// ({url} would send passwords and leads unencrypted). "
            "Only this computer's own addresses may use http://, unless IT allows it (setting server/allow_http)."
        )
    return url.strip()


def system_ssl_context() -> ssl.SSLContext:
    """TLS verified against the operating system's certificate store (Windows, macOS; OpenSSL's default paths on
    Linux, which honour SSL_CERT_FILE/SSL_CERT_DIR), not certifi's bundle."""
    import truststore

    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _untrusted_certificate(exc: BaseException) -> str | None:
    """The verification failure's reason when `exc` (a transport error) comes from an untrusted certificate."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen.reason or "verification failed")
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return "certificate verify failed"
        seen = seen.__cause__ or seen.__context__
    return None


def _transport_failure(exc: httpx.TransportError) -> Retry:
    why = _untrusted_certificate(exc)
    if why is not None:
        return CertificateNotTrusted(CERT_NOT_TRUSTED.format(why=why))
    if isinstance(exc, httpx.TimeoutException):
        return Retry("The server did not answer in time.")
    return Retry(f"Cannot reach the server ({type(exc).__name__}).")


class TokenStore(Protocol):
    """Where the refresh token is kept between runs (the OS keyring in the app)."""

    available: bool
    why_unavailable: str

    def load(self, server_url: str, email: str) -> str | None: ...
    def save(self, server_url: str, email: str, token: str) -> None: ...
    def delete(self, server_url: str, email: str) -> None: ...


class KeyringTokenStore:
    """Refresh tokens in the OS keyring (never in a plain file), one service name per server URL.

    Without a usable backend (a headless Linux box with no Secret Service, say) it stores nothing and says why; the
    app then asks for the password at each start."""

    def __init__(self) -> None:
        import keyring
        from keyring.backends import fail

        self._keyring = keyring
        backend = keyring.get_keyring()
        self.available = not isinstance(backend, fail.Keyring) and getattr(backend, "priority", 1) > 0
        self.why_unavailable = (
            ""
            if self.available
            else "No password store (keyring) is available on this computer, so you will be asked for your password "
            "each time the desk starts."
        )

    @staticmethod
    def service(server_url: str) -> str:
        return f"cre-desk:{server_url.rstrip('/')}"

    def load(self, server_url: str, email: str) -> str | None:
        if not self.available:
            return None
        try:
            value = self._keyring.get_password(self.service(server_url), email.lower())
        except Exception as exc:  # keyring backends raise their own types; a failure only means "no saved token"
            log.warning("could not read the keyring: %s", type(exc).__name__)
            return None
        return str(value) if value else None

    def save(self, server_url: str, email: str, token: str) -> None:
        if not self.available:
            return
        try:
            self._keyring.set_password(self.service(server_url), email.lower(), token)
        except Exception as exc:  # see load()
            log.warning("could not write the keyring: %s", type(exc).__name__)

    def delete(self, server_url: str, email: str) -> None:
        if not self.available:
            return
        try:
            self._keyring.delete_password(self.service(server_url), email.lower())
        except Exception as exc:  # nothing saved is fine too; see load()
            log.debug("keyring delete: %s", type(exc).__name__)


class NoTokenStore:
    """Keeps nothing: every start asks for the password."""

    available = False
    why_unavailable = "Remembering the sign-in is switched off."

    def load(self, server_url: str, email: str) -> str | None:
        return None

    def save(self, server_url: str, email: str, token: str) -> None:
        return None

    def delete(self, server_url: str, email: str) -> None:
        return None


@dataclass
class Session:
    access_token: str
    refresh_token: str
    expires_at: float
    user_id: str
    email: str


def _error_text(body: Any, fallback: str) -> tuple[str, str, Any]:
    """(message, code, details) from a PostgREST or GoTrue error body."""
    if isinstance(body, dict):
        message = body.get("message") or body.get("msg") or body.get("error_description") or fallback
        code = body.get("code") if isinstance(body.get("code"), str) else body.get("error_code") or ""
        return str(message), str(code or ""), body.get("details")
    return fallback, "", None


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the delta form; an HTTP date is read as "no hint"), capped at 10 minutes."""
    try:
        return None if value is None else min(max(float(value), 0.0), 600.0)
    except ValueError:
        return None


# Kept-alive connections that the server or a gateway may have closed while they sat in the pool: the server closes
# them after 5 s idle, and a desk applying a page can leave its fetch-ahead connections idle that long. Each failed
# attempt takes one of them out of the pool. bench_link.py's 10 desks met two in a row with one retry.
STALE_RETRIES = 3


def _past_stale_connections(post: Callable[[], httpx.Response]) -> httpx.Response:
    """`post()`, again on a RemoteProtocolError (a kept-alive connection closed as the request left; the window is an
    RTT wide on a real link) up to STALE_RETRIES times. Every RPC is safe to repeat (reads, or writes keyed by
    client_ref)."""
    retries = 0
    while True:
        try:
            return post()
        except httpx.RemoteProtocolError:
            retries += 1
            if retries > STALE_RETRIES:
                raise


class ApiClient:
    """One signed-in user's connection to the server. Thread-safe: the outbox sender, the sync reader and the
    dashboard may call `rpc()` at once."""

    def __init__(
        self,
        base_url: str,
        anon_key: str,
        *,
        token_store: TokenStore | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        proxy: str | None = None,
        allow_http: bool = False,
    ) -> None:
        """`proxy`: an explicit proxy URL (the `network/proxy` setting); empty uses the environment's
        (`HTTPS_PROXY`, `NO_PROXY`, Windows' system proxy). Loopback servers never go through a proxy."""
        self.base_url = check_server_url(base_url, allow_http=allow_http).rstrip("/")
        loopback = is_loopback_url(self.base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            # Feed pages shrink ~3.5x on a shared office link; httpx decodes either, and copes with a plain answer.
            headers={"apikey": anon_key, "Content-Type": "application/json", "Accept-Encoding": ACCEPT_ENCODING},
            timeout=timeout,
            transport=transport,
            verify=system_ssl_context(),
            # A system proxy (normal in a call centre) must not receive the demo server's loopback traffic:
            # Windows' registry proxy has no bypass list that httpx would read.
            trust_env=not loopback and not proxy,
            proxy=None if loopback else (proxy or None),
        )
        self._tokens: TokenStore = token_store or NoTokenStore()
        self._clock = clock
        self._session: Session | None = None
        self._refresh_lock = threading.Lock()
        self._deferred_lock = threading.Lock()  # taken before _refresh_lock, never inside it
        self._generation = 0  # bumped on every new session; a waiter compares it to skip a redundant refresh
        # Offline start: how to get a session once the server answers (a saved refresh token or typed password).
        self._deferred: Callable[[], Session] | None = None

    # -- session -------------------------------------------------------------------------------------------------

    @property
    def session(self) -> Session | None:
        return self._session

    @property
    def signed_in(self) -> bool:
        return self._session is not None

    @property
    def token_store(self) -> TokenStore:
        return self._tokens

    def _adopt(self, body: dict[str, Any], email: str, received_at: float) -> Session:
        """`received_at`: the local clock when the answer arrived. The token's life is the server's `expires_in`
        counted from then, so a PC clock hours off neither refreshes before every call nor uses a dead token;
        `expires_at` (the server's clock) is only a fallback for a server that sends no `expires_in`."""
        user = body.get("user") or {}
        if body.get("expires_in") is not None:
            expires_at = received_at + float(body["expires_in"])
        else:
            expires_at = float(body.get("expires_at") or received_at + 3600.0)
        session = Session(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=expires_at,
            user_id=str(user.get("id", "")),
            email=str(user.get("email") or email),
        )
        self._session = session
        self._generation += 1
        self._tokens.save(self.base_url, session.email, session.refresh_token)
        return session

    def _token_request(self, grant: str, payload: dict[str, Any]) -> httpx.Response:
        try:
            return self._http.post("/auth/v1/token", params={"grant_type": grant}, json=payload)
        except httpx.TransportError as exc:
            raise _transport_failure(exc) from exc

    def login(self, email: str, password: str) -> Session:
        self._deferred = None
        return self._password_sign_in(email, password)

    def _password_sign_in(self, email: str, password: str) -> Session:
        r = self._token_request("password", {"email": email, "password": password})
        if r.status_code >= 500:
            raise Retry(f"The server is having trouble (HTTP {r.status_code}). Try again in a moment.")
        if r.status_code != 200:
            message, code, _ = _error_text(self._json(r), "Sign-in failed.")
            if code == "invalid_credentials":
                message = "Wrong e-mail or password."
            raise LoginFailed(message)
        received_at = self._clock()
        with self._refresh_lock:
            return self._adopt(self._json(r), email, received_at)

    def restore(self, email: str) -> Session | None:
        """Silent sign-in with the refresh token saved for this server and user; None when there is none.

        Raises AuthExpired when the saved token was refused (then it is forgotten), Retry when offline."""
        token = self._tokens.load(self.base_url, email)
        if not token:
            return None
        with self._refresh_lock:
            # No stand-in session meanwhile: another thread would see it, refresh it and, if the server is away,
            # be told to sign in when it is only offline.
            return self._redeem(token, email)

    def sign_in_later(self, email: str, password: str | None = None) -> None:
        """Start offline: the first call that finds the server up signs in (with the saved refresh token, or with
        the password typed at start when no keyring is available). Until then calls raise Retry."""

        def deferred() -> Session:
            if password is not None:
                # Not login(): that forgets this deferred sign-in, and a failed attempt must leave it for the next.
                return self._password_sign_in(email, password)
            session = self.restore(email)
            if session is None:
                raise AuthExpired("Sign in to send the queued leads.")
            return session

        self._deferred = deferred

    def logout(self) -> None:
        session = self._session
        self._session = None
        if session is None:
            return
        self._tokens.delete(self.base_url, session.email)
        try:
            # scope=local: this desk's session only. GoTrue's default (global) would also sign the same CRE out of
            # a desk on another PC.
            self._http.post(
                "/auth/v1/logout",
                params={"scope": "local"},
                headers={"Authorization": f"Bearer {session.access_token}"},
            )
        except httpx.TransportError:
            pass  # offline sign-out: the token is gone locally; the server's copy expires by itself

    def refresh(self) -> Session:
        """Renew the access token. Concurrent callers share one refresh."""
        seen = self._generation
        with self._refresh_lock:
            return self._refresh_locked(seen)

    def _refresh_locked(self, seen_generation: int) -> Session:
        session = self._session
        if session is None:
            raise AuthExpired("Sign in to continue.")
        if self._generation != seen_generation and session.access_token:
            return session  # someone refreshed while we waited for the lock
        return self._redeem(session.refresh_token, session.email)

    def _redeem(self, refresh_token: str, email: str) -> Session:
        """Trade a (single-use) refresh token for a new session; call with _refresh_lock held."""
        r = self._token_request("refresh_token", {"refresh_token": refresh_token})
        if r.status_code >= 500:
            raise Retry(f"The server is having trouble (HTTP {r.status_code}).")
        if r.status_code != 200:
            self._session = None
            self._tokens.delete(self.base_url, email)
            raise AuthExpired("Your session has ended. Sign in again; queued leads are kept.")
        return self._adopt(self._json(r), email, self._clock())

    def _access_token(self) -> str:
        session = self._session
        if session is None and self._deferred is not None:
            # One deferred sign-in for all threads: the saved refresh token is single use, and redeeming it twice
            # revokes the session on the server.
            with self._deferred_lock:
                session = self._session
                deferred = self._deferred
                if session is None and deferred is not None:
                    try:
                        session = deferred()  # Retry while still offline
                    except AuthExpired:
                        self._deferred = None  # the saved sign-in was refused: ask the user
                        raise
                    self._deferred = None
        if session is None:
            raise AuthExpired("Sign in to continue.")
        if session.expires_at - self._clock() < REFRESH_MARGIN:
            session = self.refresh()
        return session.access_token

    # -- calls ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _json(r: httpx.Response) -> Any:
        try:
            return r.json()
        except ValueError:
            return None

    def rpc(self, name: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Call `POST /rest/v1/rpc/<name>` with named parameters; returns the decoded answer or raises an ApiError."""
        return self._answer(self._call(name, params, timeout))

    def rpc_text(self, name: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> str:
        """`rpc`, but a successful answer comes back as the JSON text the server sent, not decoded.

        For big answers read by SQLite (the cache feed): no Python object per value, no GIL held decoding them.
        Failures are classified exactly as `rpc` does.
        """
        r = self._call(name, params, timeout)
        if r.status_code == 200 and r.content.strip():
            return r.text
        self._answer(r)  # raises for every failure
        raise Retry("The server sent an empty answer.")

    def _call(self, name: str, params: dict[str, Any] | None, timeout: float | None) -> httpx.Response:
        """POST one RPC; network failures are Retry, a 401 renews the token once (shared) and tries again."""
        for attempt in (1, 2):
            token = self._access_token()
            generation = self._generation
            post = functools.partial(
                self._http.post,
                f"/rest/v1/rpc/{name}",
                json=params or {},
                headers={"Authorization": f"Bearer {token}"},
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            try:
                r = _past_stale_connections(post)
            except httpx.TransportError as exc:
                raise _transport_failure(exc) from exc
            if r.status_code == 401 and attempt == 1:
                # Expired or revoked token: renew once (shared with any concurrent caller), then try again.
                with self._refresh_lock:
                    self._refresh_locked(generation)
                continue
            return r
        raise AuthExpired("Your session has ended. Sign in again; queued leads are kept.")

    def _answer(self, r: httpx.Response) -> Any:
        body = self._json(r)
        if r.status_code in (200, 201):
            if body is None and r.content.strip() not in (b"null", b""):
                raise Retry("The server sent an unreadable answer.")
            return body
        if r.status_code == 204:
            return None
        message, code, details = _error_text(body, f"HTTP {r.status_code}")
        if r.status_code == 401:
            raise AuthExpired("Your session has ended. Sign in again; queued leads are kept.")
        if r.status_code >= 500 or r.status_code in (408, 429) or code in RETRY_SQLSTATES:
            raise Retry(
                f"The server is busy or having trouble (HTTP {r.status_code}). It will be retried.",
                status=r.status_code,
                retry_after=_retry_after(r.headers.get("retry-after")),
            )
        raise Rejected(message, code=code, status=r.status_code, details=details)

    def close(self) -> None:
        self._http.close()
