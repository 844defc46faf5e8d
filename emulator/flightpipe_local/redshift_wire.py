"""A TCP front that lets AWS's ``redshift_connector`` talk to the embedded PostgreSQL.

Users query Redshift directly with AWS's Python driver, ``redshift_connector``.
Pointed at the stand-in's PostgreSQL it fails before the first query: the driver
opens every session with Redshift-only start-up parameters, and PostgreSQL reads
any start-up parameter it does not know as a setting and refuses the session
(``unrecognized configuration parameter "client_protocol_version"``). This front
listens on loopback TCP, does the start-up the way Redshift does for such a client,
then relays bytes unchanged to the stand-in's unix socket. What it translates:

- **SSLRequest and GSSENCRequest** are answered ``N`` (no encryption on loopback),
  as PostgreSQL does without TLS. ``redshift_connector`` asks for TLS by default and
  raises "Server refuses SSL" on ``N``, so clients pass ``ssl=False``
  (https://docs.aws.amazon.com/redshift/latest/mgmt/python-configuration-options.html).
- **Start-up parameters that only Redshift knows are dropped** (:data:`REDSHIFT_ONLY_PARAMETERS`).
  ``redshift_connector/core.py``, ``Connection.__init__`` builds ``init_params``:
  ``client_protocol_version``, ``driver_version``, ``os_version`` and
  ``driver_discovery_version`` always; ``plugin_name``, ``idp_type``,
  ``provider_name``, ``identity_namespace``, ``token_type`` and
  ``idc_client_display_name`` with identity-provider plugins
  (``Connection.set_idc_plugins_params``). ``user``, ``database`` and
  ``application_name`` go through, as does any parameter another PostgreSQL client sends.
- **The session gets the stand-in's Redshift-like settings** (``session_parameters``,
  e.g. :attr:`RedshiftStandIn.session_parameters
  <flightpipe_local.redshift_standin.RedshiftStandIn.session_parameters>`), sent as
  start-up parameters, which PostgreSQL applies as ``SET``s before the first query:
  a report's SQL then reads string literals (``standard_conforming_strings = off``)
  and sees snapshots (``default_transaction_isolation``) as the stand-in's own
  sessions and Redshift do. A setting the client sends itself wins.
- **No** ``server_protocol_version`` **is added.** Redshift reports it in a
  ParameterStatus to accept the driver's extended result metadata (protocol 1:
  extra fields in every RowDescription) or binary transfer (protocol 2). PostgreSQL
  speaks neither, and the driver, not hearing the parameter, falls back to
  ``ClientProtocolVersion.BASE_SERVER``, plain PostgreSQL messages
  (``redshift_connector/core.py``: the end of ``Connection.__init__`` and
  ``Connection.handle_PARAMETER_STATUS``; ``redshift_connector/config.py``:
  ``ClientProtocolVersion``). Reporting it would make the driver misread every row.
- **CancelRequest** is passed on to PostgreSQL as is: the BackendKeyData the client
  got is PostgreSQL's own, relayed unchanged.

Authentication is PostgreSQL's (the stand-in trusts local connections, so any
password does); the front listens on loopback only. Message formats:
https://www.postgresql.org/docs/16/protocol-message-formats.html
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union
from urllib.parse import parse_qs, unquote, urlsplit

LOOPBACK = "127.0.0.1"
PROTOCOL_3 = 3 << 16
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
REDSHIFT_ONLY_PARAMETERS = frozenset(
    {
        "client_protocol_version",
        "driver_version",
        "os_version",
        "driver_discovery_version",
        "plugin_name",
        "idp_type",
        "provider_name",
        "identity_namespace",
        "token_type",
        "idc_client_display_name",
    }
)
_MAX_STARTUP_BYTES = 10_000  # PostgreSQL's own limit on a start-up packet
_HANDSHAKE_TIMEOUT = 30.0  # a client that connects and says nothing does not hold a thread
_ACCEPT_POLL = 0.2  # how soon the accept loop notices stop()
_CHUNK = 1 << 16
_log = logging.getLogger(__name__)


class WireProtocolError(RuntimeError):
    """A client's start-up could not be read or relayed."""


@dataclass(frozen=True)
class WarehouseEndpoint:
    """Where a Redshift client connects: ``redshift_connector.connect(host=…, port=…,
    database=…, user=…, password="", ssl=False)`` (any password: the stand-in trusts
    loopback)."""

    host: str
    port: int
    database: str
    user: str


def postgres_login(uri: str) -> tuple[str, str]:
    """The user and database of a libpq URI (libpq's defaults: user ``postgres``, the
    database named as the user)."""
    parts = urlsplit(uri)
    user = unquote(parts.username or "") or "postgres"
    return user, unquote(parts.path.lstrip("/")) or user


def postgres_socket_path(postgres: Union[str, Path]) -> str:
    """The unix socket file of a PostgreSQL server.

    Accepts a libpq URI with ``host=<socket dir>`` (as :attr:`RedshiftStandIn.uri`),
    the socket directory, or the ``.s.PGSQL.<port>`` file itself.
    """
    text = str(postgres)
    if "://" not in text:
        path = Path(text)
        return str(path if path.name.startswith(".s.PGSQL.") else path / ".s.PGSQL.5432")
    parts = urlsplit(text)
    query = parse_qs(parts.query)
    directory = query.get("host", [unquote(parts.hostname or "")])[0]
    if not directory.startswith("/"):
        raise ValueError(f"not a unix-socket PostgreSQL URI: {text!r}")
    port = query.get("port", [str(parts.port or 5432)])[0]
    return str(Path(directory) / f".s.PGSQL.{port}")


def read_startup_parameters(body: bytes) -> dict[str, str]:
    """The name/value pairs of a StartupMessage body (after length and protocol)."""
    fields = body.split(b"\0")
    if len(fields) < 2 or fields[-1] != b"" or fields[-2] != b"":
        raise WireProtocolError("malformed StartupMessage: parameters not terminated")
    names_values = [field.decode("utf-8") for field in fields[:-2]]
    if len(names_values) % 2:
        raise WireProtocolError("malformed StartupMessage: a parameter has no value")
    return dict(zip(names_values[::2], names_values[1::2]))


def startup_message(parameters: Mapping[str, str], protocol: int = PROTOCOL_3) -> bytes:
    """A StartupMessage carrying ``parameters``."""
    body = b"".join(
        name.encode("utf-8") + b"\0" + value.encode("utf-8") + b"\0"
        for name, value in parameters.items()
    )
    body = struct.pack("!i", protocol) + body + b"\0"
    return struct.pack("!i", len(body) + 4) + body


def postgres_parameters(
    client: Mapping[str, str], session_parameters: Mapping[str, str]
) -> dict[str, str]:
    """The start-up parameters PostgreSQL gets: the client's without Redshift's, over the
    session settings."""
    kept = {name: value for name, value in client.items() if name not in REDSHIFT_ONLY_PARAMETERS}
    return {**session_parameters, **kept}


def error_response(message: str, code: str = "08006") -> bytes:
    """A FATAL ErrorResponse, so the client reports why instead of a broken pipe."""
    fields = b"".join(
        kind + text.encode("utf-8") + b"\0"
        for kind, text in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise WireProtocolError("client closed during start-up")
        data.extend(chunk)
    return bytes(data)


def _read_startup_packet(connection: socket.socket) -> tuple[int, bytes]:
    """One length-prefixed start-up packet: its code (protocol or request) and the rest."""
    length, code = struct.unpack("!ii", _read_exactly(connection, 8))
    if not 8 <= length <= _MAX_STARTUP_BYTES:
        raise WireProtocolError(f"invalid start-up packet length {length}")
    return code, _read_exactly(connection, length - 8)


def _close(sock: socket.socket) -> None:
    """Shut a socket down (waking a thread blocked reading it) and close it."""
    with contextlib.suppress(OSError):  # already shut or closed
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class _Session:
    """One client connection and, once started up, its PostgreSQL connection."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.server: Optional[socket.socket] = None
        self.thread: Optional[threading.Thread] = None  # serves it; joins its relay thread

    def close(self) -> None:
        _close(self.client)
        if self.server is not None:
            _close(self.server)


class RedshiftWireFront:
    """Loopback TCP endpoint speaking Redshift's start-up, relaying to PostgreSQL.

    ``postgres`` is the server's libpq unix-socket URI, its socket directory or
    socket file; ``port`` 0 takes a free port. ``session_parameters`` are settings
    every session starts with. Use :meth:`start` and :meth:`stop`, or ``with``.
    """

    def __init__(
        self,
        postgres: Union[str, Path],
        port: int = 0,
        session_parameters: Optional[Mapping[str, str]] = None,
        host: str = LOOPBACK,
    ) -> None:
        self._socket_path = postgres_socket_path(postgres)
        self._requested = (host, port)
        self._session_parameters = dict(session_parameters or {})
        self._lock = threading.Lock()
        self._listener: Optional[socket.socket] = None
        self._acceptor: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._sessions: set[_Session] = set()
        self._address: Optional[tuple[str, int]] = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> RedshiftWireFront:
        """Listen and accept clients on a background thread."""
        with self._lock:
            if self._listener is not None:
                raise RuntimeError("the front is already started")
            listener = socket.create_server(self._requested)
            listener.settimeout(_ACCEPT_POLL)
            self._listener = listener
            self._address = listener.getsockname()[:2]
            self._stopping.clear()
            self._acceptor = threading.Thread(
                target=self._accept_loop, args=(listener,), name="redshift-wire-accept", daemon=True
            )
            self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop listening, close every session and wait for their threads."""
        with self._lock:
            listener, self._listener = self._listener, None
            acceptor, self._acceptor = self._acceptor, None
            self._stopping.set()
            sessions = list(self._sessions)
        if listener is not None:
            listener.close()
        if acceptor is not None:
            acceptor.join()
        for session in sessions:
            session.close()
        for session in sessions:
            if session.thread is not None and session.thread is not threading.current_thread():
                session.thread.join()

    def __enter__(self) -> RedshiftWireFront:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._bound()[0]

    @property
    def port(self) -> int:
        return self._bound()[1]

    @property
    def session_count(self) -> int:
        """Client connections open now."""
        with self._lock:
            return len(self._sessions)

    def endpoint(self, database: str, user: str) -> WarehouseEndpoint:
        """Where clients connect to reach ``database`` as ``user``."""
        return WarehouseEndpoint(self.host, self.port, database, user)

    def _bound(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("the front is not started")
        return self._address

    # -- serving ---------------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:  # closed by stop()
                return
            self._begin(client)

    def _begin(self, client: socket.socket) -> None:
        session = _Session(client)
        session.thread = threading.Thread(
            target=self._serve, args=(session,), name="redshift-wire-session", daemon=True
        )
        with self._lock:
            if self._stopping.is_set():
                client.close()
                return
            self._sessions.add(session)
        session.thread.start()

    def _serve(self, session: _Session) -> None:
        try:
            session.client.settimeout(_HANDSHAKE_TIMEOUT)
            if self._start_up(session):
                session.client.settimeout(None)
                self._relay(session)
        except (OSError, WireProtocolError, UnicodeDecodeError) as error:
            _log.debug("redshift wire session ended: %s", error)
        finally:
            session.close()
            with self._lock:
                self._sessions.discard(session)

    def _start_up(self, session: _Session) -> bool:
        """Negotiate with the client and open its PostgreSQL session; False if none follows."""
        code, body = _read_startup_packet(session.client)
        while code in (SSL_REQUEST, GSSENC_REQUEST):
            session.client.sendall(b"N")
            code, body = _read_startup_packet(session.client)
        if code == CANCEL_REQUEST:
            self._forward_cancel(body)
            return False
        if code >> 16 != 3:
            session.client.sendall(error_response(f"unsupported protocol {code >> 16}", "0A000"))
            return False
        parameters = postgres_parameters(read_startup_parameters(body), self._session_parameters)
        session.server = self._connect_postgres(session)
        if session.server is None:
            return False
        session.server.sendall(startup_message(parameters, code))
        return True

    def _connect_postgres(self, session: _Session) -> Optional[socket.socket]:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.connect(self._socket_path)
        except OSError as error:
            server.close()
            session.client.sendall(error_response(f"the local warehouse is not reachable: {error}"))
            return None
        return server

    def _forward_cancel(self, body: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.connect(self._socket_path)
            server.sendall(struct.pack("!ii", 16, CANCEL_REQUEST) + body)

    def _relay(self, session: _Session) -> None:
        """Copy bytes both ways until either side closes: server to client on a second thread."""
        assert session.server is not None
        backward = threading.Thread(
            target=self._pump,
            args=(session, session.server, session.client),
            name="redshift-wire-relay",
            daemon=True,
        )
        backward.start()
        self._pump(session, session.client, session.server)
        backward.join()

    @staticmethod
    def _pump(session: _Session, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(_CHUNK):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            session.close()  # one side is gone: the other one ends too
