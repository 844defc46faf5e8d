"""An embedded PostgreSQL server that accepts the project's Redshift SQL.

Local runs and tests need a real SQL engine where users have Redshift. This
module starts PostgreSQL 16 from ``pgserver`` (no Docker, no system install) and
bridges the few places where the project's Redshift dialect differs:

- table attributes that PostgreSQL does not know (``DISTSTYLE``, ``DISTKEY``,
  ``SORTKEY``, ``ENCODE``) are stripped from ``CREATE TABLE``;
- ``COPY … FROM 's3://bucket/prefix'`` is served from an object store given by
  the caller (the emulated S3), streamed into ``COPY … FROM STDIN``;
- ``GETDATE()`` exists, and string literals read backslashes as escapes, as in
  Redshift (``standard_conforming_strings = off``);
- ``CHAR(n)`` and ``VARCHAR(n)`` columns hold at most *n bytes*, as in Redshift
  (PostgreSQL counts characters): ``CREATE TABLE`` gives each such column a
  ``CHECK (octet_length(column) <= n)``, and a violation reads like Redshift's
  "value too long for type character varying(n)";
- transactions run under the isolation Redshift uses by default, snapshot
  isolation (PostgreSQL's ``REPEATABLE READ``), or optionally serializable, and a
  transaction that loses a conflict fails with Redshift's error text
  (``1023 DETAIL: Serializable isolation violation on table - …``);
- statements can run as a database user (:meth:`RedshiftStandIn.sign_in`, then
  ``execute_batch(…, user=…)``), whose privileges alone apply, and a missing
  privilege fails with Redshift's words (``permission denied for relation …``).

Every :meth:`RedshiftStandIn.query` runs in its own session, and every
:meth:`RedshiftStandIn.execute_batch` in one session and one transaction — the
same contract as the Redshift Data API.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import re
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional, Union

import psycopg

from flightpipe.sql import quote_literal
from flightpipe.warehouse.port import Row, StatementError

ObjectBody = Union[bytes, BinaryIO]
S3Reader = Callable[[str, str], ObjectBody]
S3Lister = Callable[[str, str], list]
# copy_reader_for_role(role) -> (reader, lister) that COPY reads S3 through. ``role`` is the
# ARN that COPY names (IAM_ROLE '<arn>'), "default" for IAM_ROLE DEFAULT, or None when COPY
# names no role. On AWS that role, not the signed-in user, reads the objects:
# https://docs.aws.amazon.com/redshift/latest/mgmt/copy-unload-iam-role.html
CopyReaderFactory = Callable[[Optional[str]], tuple[S3Reader, Optional[S3Lister]]]

_COPY_CHUNK_BYTES = 1 << 20
# Settings every session gets: Redshift reads backslashes in string literals as escapes.
SESSION_PARAMETERS = {
    "standard_conforming_strings": "off",
    "escape_string_warning": "off",
    "client_min_messages": "warning",
}
_SESSION_SETTINGS = tuple(f"SET {name} = {value}" for name, value in SESSION_PARAMETERS.items())
# Redshift's two isolation levels and their PostgreSQL equivalents. SNAPSHOT is the
# default of Redshift Serverless workgroups and, since May 2024, of new provisioned
# clusters (SERIALIZABLE before); both can be changed with CREATE/ALTER DATABASE:
# https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html
# https://aws.amazon.com/about-aws/whats-new/2022/05/amazon-redshift-snapshot-isolation-level-support-concurrent-transactions/
# https://aws.amazon.com/about-aws/whats-new/2024/05/amazon-redshift-snapshot-isolation-provisioned-clusters/
# PostgreSQL's REPEATABLE READ is snapshot isolation: a transaction that writes a row a
# concurrent transaction changed and committed after its snapshot fails (SQLSTATE 40001).
ISOLATION_LEVELS = {"snapshot": "repeatable read", "serializable": "serializable"}
DEFAULT_ISOLATION = "snapshot"
# What Redshift reports when a transaction loses a conflict: "ERROR: 1023 DETAIL:
# Serializable isolation violation on table - [table_id], transactions forming the cycle
# are: [transaction_id], [transaction_id] (pid:[process_id])":
# https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation-serializable-isolation-troubleshooting.html
# https://aws.amazon.com/premiumsupport/knowledge-center/redshift-serializable-isolation/
SERIALIZATION_CONFLICT = "1023 DETAIL: Serializable isolation violation on table"
_GETDATE_FUNCTION = (
    "CREATE OR REPLACE FUNCTION public.getdate() RETURNS timestamp "
    "LANGUAGE sql STABLE AS 'SELECT now()::timestamp'"
)
_SVV_ROLES_VIEW = (
    "CREATE OR REPLACE VIEW public.svv_roles AS "
    "SELECT oid::integer AS role_id, rolname::varchar(128) AS role_name, "
    "NULL::varchar(128) AS role_owner, NULL::varchar(128) AS external_id "
    "FROM pg_roles WHERE NOT rolcanlogin"
)
# Redshift's system views are visible to every user; the stand-in's svv_roles too.
# (Not granted: Redshift's default CREATE on schema public for all users, "By default, all
# users have CREATE and USAGE permissions on the PUBLIC schema",
# https://docs.aws.amazon.com/redshift/latest/dg/r_Schemas_and_tables-schema-based-privileges.html;
# PostgreSQL 15+ gives PUBLIC only USAGE there, and the pipeline creates nothing in it.)
_PUBLIC_GRANTS = ("GRANT SELECT ON public.svv_roles TO PUBLIC",)
# A failed sign-in, as PostgreSQL (and Redshift, its fork) reports a failed password
# authentication, whether the user is missing, may not log in, or the password is wrong.
AUTHENTICATION_FAILED = 'password authentication failed for user "{user}"'
# PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes (Redshift allows 128).
_MAX_NAME_BYTES = 63
# PostgreSQL 16 names the kind of relation it refuses; Redshift (forked from PostgreSQL 8)
# says "relation", e.g. "permission denied for relation stl_insert" on Redshift Serverless
# (https://github.com/mage-ai/mage-ai/issues/2754) and "permission denied for relation
# svv_table_info" (https://github.com/dbeaver/dbeaver/issues/40126); schemas keep their word:
# "permission denied for schema pg_automv" (https://github.com/awslabs/amazon-redshift-utils/pull/638).
_RELATION_DENIED = re.compile(
    r"^permission denied for (?:table|view|materialized view|sequence|foreign table) (?P<name>.+)$",
    re.S,
)
_PASSWORD_DISABLE = re.compile(
    r"^(\s*(?:CREATE|ALTER)\s+USER\s.*?\bPASSWORD\s+)DISABLE\b", re.I | re.S
)
_GRANT = re.compile(r"^\s*(?:GRANT|REVOKE)\b", re.I)
_TO_ROLE = re.compile(r"\b(TO|FROM)\s+ROLE\s+", re.I)
_GRANT_ROLE = re.compile(r"^(\s*(?:GRANT|REVOKE)\s+)ROLE\s+", re.I)
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+(?:(?:LOCAL\s+)?(?:TEMP|TEMPORARY)\s+)?TABLE\b", re.I)
_TABLE_ATTRIBUTES = re.compile(
    r"""\bDISTSTYLE\s+(?:ALL|EVEN|KEY|AUTO)\b
      | \bDISTKEY\s*\([^)]*\)
      | \b(?:COMPOUND\s+|INTERLEAVED\s+)?SORTKEY\s*(?:\([^)]*\)|AUTO\b)
      | \bENCODE\s+\w+
      | \bBACKUP\s+(?:YES|NO)\b
      | (?<=\s)(?:DISTKEY|SORTKEY)\b(?=\s*[,)])
    """,
    re.I | re.X,
)
# A CHAR/VARCHAR column definition: right after the "(" or "," that starts it.
# Redshift sizes both in bytes (CHAR holds single-byte characters only):
# https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html
_CHARACTER_COLUMN = re.compile(
    r"""(?P<lead>[(,]\s*)
        (?P<column>"(?:[^"]|"")+"|[A-Za-z_][\w$]*)\s+
        (?P<type>VARCHAR|CHARACTER\s+VARYING|NVARCHAR|CHAR|CHARACTER|NCHAR|BPCHAR)\s*
        \(\s*(?P<length>\d+|MAX)\s*\)""",
    re.I | re.X,
)
_MAX_BYTES = {"varchar": 65535, "char": 4096}
_BYTE_CHECK_NAME = re.compile(r"^bytes_(?P<length>\d+)_(?P<kind>varchar|char)_(?P<column>.*)$")
_WRITTEN_TABLE = re.compile(
    r"""^\s*(?:DELETE\s+FROM|UPDATE|INSERT\s+INTO|COPY|TRUNCATE(?:\s+TABLE)?|MERGE\s+INTO)
        \s+(?P<table>[\w."]+)""",
    re.I | re.X,
)
_COPY_FROM_S3 = re.compile(
    r"""^\s*COPY\s+(?P<table>[\w."]+)\s*(?:\((?P<columns>[^)]*)\))?\s*
        FROM\s+'(?P<uri>s3://(?:[^'\\]|''|\\.)*)'\s*(?P<options>.*?)\s*;?\s*$""",
    re.I | re.X | re.S,
)
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<prefix>.*)$", re.S)
_COPY_OPTION = re.compile(
    r"""\s*(?:
        (?P<gzip>GZIP)
      | (?P<manifest>MANIFEST)
      | (?P<csv>(?:FORMAT\s+(?:AS\s+)?)?CSV)
      | (?P<text>FORMAT\s+(?:AS\s+)?TEXT)
      | IGNOREHEADER\s+(?:AS\s+)?(?P<ignoreheader>\d+)
      | DELIMITER\s+(?:AS\s+)?'(?P<delimiter>[^']+)'
      | NULL\s+(?:AS\s+)?'(?P<null>(?:[^']|'')*)'
      | IAM_ROLE\s+(?:AS\s+)?(?:'(?P<iam_role>(?:[^']|'')*)'|(?P<iam_role_default>DEFAULT))
      | (?P<ignored>
            (?:CREDENTIALS|REGION|DATEFORMAT|TIMEFORMAT)\s+(?:AS\s+)?
                (?:'(?:[^']|'')*'|DEFAULT)
          | EMPTYASNULL | BLANKSASNULL | ACCEPTINVCHARS | TRUNCATECOLUMNS | STATUPDATE\s+\w+
          | COMPUPDATE\s+\w+ | TRIMBLANKS)
    )""",
    re.I | re.X | re.S,
)


class StandInSqlError(RuntimeError):
    """A statement failed in the stand-in; the batch it belonged to was rolled back."""

    def __init__(self, message: str, statement_index: int = 0) -> None:
        super().__init__(message)
        self.statement_index = statement_index


class StandInAuthenticationError(StandInSqlError):
    """A sign-in failed: no statement ran (PostgreSQL reports it as FATAL, not ERROR)."""


@dataclass
class QueryResult:
    """What one statement returned: column names and types, rows and the affected count."""

    columns: list[str] = field(default_factory=list)
    column_types: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    rowcount: int = -1

    @property
    def has_result_set(self) -> bool:
        return bool(self.columns)

    def as_dicts(self) -> list[Row]:
        return [dict(zip(self.columns, row)) for row in self.rows]


@dataclass(frozen=True)
class CopyFromS3:
    """A parsed Redshift ``COPY … FROM 's3://…'``."""

    table: str
    columns: Optional[str]
    bucket: str
    prefix: str
    gzip: bool = False
    csv: bool = False
    ignore_header: int = 0
    delimiter: Optional[str] = None
    null: Optional[str] = None
    manifest: bool = False
    # The role COPY names: its ARN, "default" (IAM_ROLE DEFAULT), or None (no IAM_ROLE).
    iam_role: Optional[str] = None

    def postgres_copy(self) -> str:
        """The equivalent ``COPY … FROM STDIN`` for PostgreSQL."""
        options = ["FORMAT csv" if self.csv else "FORMAT text"]
        if self.delimiter is not None:
            options.append(f"DELIMITER {quote_literal(self.delimiter)}")
        elif not self.csv:
            options.append("DELIMITER '|'")
        if self.null is not None:
            options.append(f"NULL {quote_literal(self.null)}")
        columns = f" ({self.columns})" if self.columns else ""
        return f"COPY {self.table}{columns} FROM STDIN WITH ({', '.join(options)})"


def translate_role_grants(statement: str) -> str:
    """Redshift's ``GRANT … TO ROLE r`` / ``GRANT ROLE r TO u`` in PostgreSQL's syntax."""
    if not _GRANT.match(statement):
        return statement
    return _TO_ROLE.sub(r"\1 ", _GRANT_ROLE.sub(r"\1", statement))


def strip_table_attributes(statement: str) -> str:
    """Remove Redshift-only table attributes from a ``CREATE TABLE`` statement."""
    if not _CREATE_TABLE.match(statement):
        return statement
    return _TABLE_ATTRIBUTES.sub("", statement)


def enforce_byte_lengths(statement: str) -> str:
    """Give every ``CHAR(n)``/``VARCHAR(n)`` column of a ``CREATE TABLE`` a byte-length check.

    PostgreSQL's ``VARCHAR(n)`` counts characters, Redshift's counts bytes: ``ÉÉÉÉÉ``
    fits a PostgreSQL ``VARCHAR(5)`` but is 10 bytes, too long for Redshift's. A
    ``CHECK (octet_length(column) <= n)`` per column keeps ``COPY`` fast (no cast, no
    trigger). A padded ``CHAR(n)`` with a multibyte character is longer than ``n``
    bytes, so it fails too, as Redshift's single-byte ``CHAR`` does.
    """
    if not _CREATE_TABLE.match(statement):
        return statement

    def with_check(match: re.Match) -> str:
        kind = "varchar" if "VAR" in match.group("type").upper() else "char"
        text = match.group("length")
        length = _MAX_BYTES[kind] if text.upper() == "MAX" else int(text)
        column = match.group("column")
        if column.upper() == "AS":  # CREATE TABLE … AS SELECT CAST(x AS VARCHAR(n)): no column
            return match.group(0)
        bare = re.sub(r"\W", "_", column.strip('"').replace('""', '"')).lower()
        name = f"bytes_{length}_{kind}_{bare}"[:63]
        return (
            f"{match.group('lead')}{column} {match.group('type')}({length}) "
            f"CONSTRAINT {name} CHECK (octet_length({column}) <= {length})"
        )

    return _CHARACTER_COLUMN.sub(with_check, statement)


def translate_password_disable(statement: str) -> str:
    """Redshift's ``CREATE/ALTER USER … PASSWORD DISABLE`` as PostgreSQL's ``PASSWORD NULL``:
    the user can sign in only with temporary credentials
    (https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_USER.html)."""
    return _PASSWORD_DISABLE.sub(r"\1NULL", statement)


def translate_statement(statement: str) -> str:
    """The PostgreSQL form of one Redshift statement (other than ``COPY`` from S3)."""
    return translate_password_disable(
        translate_role_grants(enforce_byte_lengths(strip_table_attributes(statement)))
    )


def parse_copy_from_s3(statement: str) -> Optional[CopyFromS3]:
    """Parse a Redshift ``COPY`` from S3, or return None for any other statement."""
    match = _COPY_FROM_S3.match(statement)
    if not match:
        return None
    uri = _redshift_string_value(match.group("uri"))
    location = _S3_URI.match(uri)
    if not location:
        raise StandInSqlError(f"COPY source is not an s3:// object or prefix: {uri!r}")
    settings: dict[str, Any] = {}
    options = match.group("options")
    position = 0
    while position < len(options):
        option = _COPY_OPTION.match(options, position)
        if not option or option.end() == position:
            raise StandInSqlError(f"COPY option not supported locally: {options[position:]!r}")
        position = option.end()
        _read_copy_option(option, settings)
    return CopyFromS3(
        table=match.group("table"),
        columns=match.group("columns"),
        bucket=location.group("bucket"),
        prefix=location.group("prefix"),
        **settings,
    )


def _read_copy_option(option: re.Match, settings: dict[str, Any]) -> None:
    if option.group("gzip"):
        settings["gzip"] = True
    elif option.group("manifest"):
        settings["manifest"] = True
    elif option.group("csv"):
        settings["csv"] = True
    elif option.group("ignoreheader"):
        settings["ignore_header"] = int(option.group("ignoreheader"))
    elif option.group("delimiter"):
        settings["delimiter"] = option.group("delimiter")
    elif option.group("null") is not None:
        settings["null"] = option.group("null").replace("''", "'")
    elif option.group("iam_role") is not None:
        settings["iam_role"] = _redshift_string_value(option.group("iam_role"))
    elif option.group("iam_role_default"):
        settings["iam_role"] = "default"


def _redshift_string_value(body: str) -> str:
    """The value of a Redshift string literal's body (quotes doubled, backslash escapes)."""
    return re.sub(r"\\(.)", r"\1", body.replace("''", "'"), flags=re.S)


def _pg_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def database_name(name: str) -> str:
    """``name`` as PostgreSQL stores it: truncated to 63 bytes (on a character boundary)."""
    return name.encode("utf-8")[:_MAX_NAME_BYTES].decode("utf-8", errors="ignore")


def password_matches(stored: Optional[str], user: str, password: str) -> bool:
    """Whether ``password`` is the one PostgreSQL stored for ``user`` (``pg_authid.rolpassword``:
    a SCRAM-SHA-256 verifier, RFC 7677 / RFC 5802, or an MD5 hash of password and user name,
    https://www.postgresql.org/docs/16/catalog-pg-authid.html). No stored password
    (PASSWORD NULL, Redshift's PASSWORD DISABLE) matches nothing."""
    if not stored:
        return False
    if stored.startswith("SCRAM-SHA-256$"):
        try:
            head, keys = stored[len("SCRAM-SHA-256$") :].split("$")
            iterations, salt = head.split(":")
            stored_key = keys.split(":")[0]
            salted = hashlib.pbkdf2_hmac(
                "sha256", password.encode("utf-8"), base64.b64decode(salt), int(iterations)
            )
        except ValueError:
            return False
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        computed = base64.b64encode(hashlib.sha256(client_key).digest()).decode("ascii")
        return hmac.compare_digest(computed, stored_key)
    if stored.startswith("md5"):
        digest = "md5" + hashlib.md5((password + user).encode("utf-8")).hexdigest()
        return hmac.compare_digest(digest, stored)
    return False


HANDLES_FILE = ".handle_pids.json"
# Process start times are known to about a second (the kernel's boot time is whole seconds).
_START_TIME_SLACK_S = 2.0


def prune_gone_handles(data_dir: Path) -> list[int]:
    """Remove the processes that no longer run from pgserver's list of the server's users.

    pgserver 0.1.4 keeps ``<data dir>/.handle_pids.json``: each process that opens the
    server adds its pid, and closing removes it and stops the server only when the list
    then held no one else. A process killed (SIGKILL) stays listed for good, so every later
    clean stop would leave PostgreSQL running. A pid counts as gone when no process has it,
    or when its process started after the list was last written (a reused number: a user
    of the server adds itself after it starts). Done under pgserver's own inter-process lock.
    Returns the pruned pids.
    """
    import psutil
    from pgserver.postgres_server import PostgresServer

    path = Path(data_dir) / HANDLES_FILE
    with PostgresServer._lock:
        try:
            pids = json.loads(path.read_text(encoding="utf-8"))
            written = path.stat().st_mtime
        except (OSError, ValueError):
            return []
        if not isinstance(pids, list):
            return []
        gone = [pid for pid in pids if not _uses_server(pid, written, psutil)]
        if gone:
            path.write_text(json.dumps([pid for pid in pids if pid not in gone]))
    return gone


def _uses_server(pid: Any, written: float, psutil: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        process = psutil.Process(pid)
        started = process.create_time()
        return process.status() != psutil.STATUS_ZOMBIE and started <= written + _START_TIME_SLACK_S
    except psutil.Error:
        return False


class RedshiftStandIn:
    """Embedded PostgreSQL speaking the project's Redshift SQL.

    ``data_dir`` holds the database files: reuse it to keep the warehouse
    between runs. ``s3_reader(bucket, key)`` returns an object's bytes (or a
    binary stream); ``s3_lister(bucket, prefix)`` lists keys under a prefix,
    which gives ``COPY`` Redshift's prefix semantics (without it the prefix
    must name one object). ``isolation`` is ``"snapshot"`` (Redshift's default,
    PostgreSQL's ``REPEATABLE READ``) or ``"serializable"``.

    ``copy_reader_for_role(role)`` gives the reader and lister a ``COPY`` naming that IAM
    role reads S3 through (see :data:`CopyReaderFactory`); by default every ``COPY``
    reads through ``s3_reader`` and ``s3_lister``. It is also a public attribute, to be
    set once the S3 endpoint that reads as a role exists.
    """

    def __init__(
        self,
        data_dir: Union[str, Path],
        s3_reader: S3Reader,
        s3_lister: Optional[S3Lister] = None,
        isolation: str = DEFAULT_ISOLATION,
        copy_reader_for_role: Optional[CopyReaderFactory] = None,
    ) -> None:
        import pgserver  # imported here: only local runs need the server package

        if isolation not in ISOLATION_LEVELS:
            raise ValueError(f"isolation must be one of {sorted(ISOLATION_LEVELS)}: {isolation!r}")
        self.isolation = isolation
        self._last_commit_xid: Optional[str] = None

        self._data_dir = Path(data_dir).expanduser().resolve()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self.copy_reader_for_role: CopyReaderFactory = copy_reader_for_role or (
            lambda role: (s3_reader, s3_lister)
        )
        # Processes that died without letting go of the server (killed) would keep it running
        # past the last clean stop: pgserver stops it only when the list holds no one else.
        self.pruned_handles = prune_gone_handles(self._data_dir)
        self._server = pgserver.get_server(self._data_dir, cleanup_mode="stop")
        self._uri = self._server.get_uri()
        self._lock = threading.Lock()
        self._sign_in_lock = threading.Lock()
        with psycopg.connect(self._uri, autocommit=True) as connection:
            connection.execute(_GETDATE_FUNCTION)
            connection.execute(_SVV_ROLES_VIEW)
            for grant in _PUBLIC_GRANTS:
                connection.execute(grant)
            self.superuser: str = connection.execute("SELECT current_user").fetchone()[0]

    @property
    def uri(self) -> str:
        """A libpq connection URI of the server (unix socket)."""
        return self._uri

    @property
    def session_parameters(self) -> dict[str, str]:
        """The settings of the stand-in's own sessions, for sessions opened elsewhere
        (e.g. through :mod:`flightpipe_local.redshift_wire`) to behave the same."""
        level = ISOLATION_LEVELS[self.isolation]
        return {**SESSION_PARAMETERS, "default_transaction_isolation": level}

    def connect(self) -> psycopg.Connection:
        """A plain PostgreSQL session: no Redshift translation is applied."""
        return psycopg.connect(self._uri)

    def query(
        self, sql: str, *, role: Optional[str] = None, user: Optional[str] = None
    ) -> QueryResult:
        """Run one statement in its own session, committed when it succeeds."""
        return self.execute_batch([sql], role=role, user=user)[0]

    def execute_batch(
        self,
        statements: Sequence[str],
        *,
        role: Optional[str] = None,
        user: Optional[str] = None,
    ) -> list[QueryResult]:
        """Run statements in order in one session and one transaction.

        ``user`` runs them as that database user (``SET SESSION AUTHORIZATION`` before the
        transaction begins; the session, and with it the authorization, ends with the
        batch): ``current_user`` is that user and only its privileges and those of its
        roles apply, as after a sign-in (see :meth:`sign_in`). ``role`` runs them with one
        role's privileges only (``SET ROLE``). By default they run as the server's
        superuser. On the first failure everything is rolled back and
        :class:`StandInSqlError` names the failing statement.
        """
        results: list[QueryResult] = []
        with self._session() as connection:
            try:
                if user is not None:
                    name = _pg_identifier(database_name(user))
                    connection.execute(f"SET SESSION AUTHORIZATION {name}")
                if role is not None:
                    connection.execute(f"SET ROLE {_pg_identifier(role)}")
                with connection.transaction(), connection.cursor() as cursor:
                    xid = "unknown"
                    for index, statement in enumerate(statements):
                        if xid == "unknown" and not _takes_no_snapshot(statement):
                            # The transaction id, for Redshift's conflict message; taken right
                            # before the first statement that takes the snapshot, which this
                            # SELECT then takes at the same point.
                            xid = cursor.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
                        results.append(self._run(cursor, statement, index))
            except psycopg.Error as error:
                index = len(results)
                # past the last statement: the COMMIT failed (a serializable conflict)
                failed = statements[index] if index < len(statements) else statements[-1]
                if isinstance(error, psycopg.errors.SerializationFailure):
                    cycle = (self._last_commit_xid or "unknown", xid)
                    message = _conflict_message(connection, failed, cycle)
                else:
                    message = _redshift_message(connection, failed, error)
                raise StandInSqlError(message, index) from error
        self._last_commit_xid = xid
        return results

    def sign_in(
        self,
        user: str,
        *,
        password: Optional[str] = None,
        create: Callable[[], bool] = lambda: False,
        roles: Optional[Sequence[str]] = None,
    ) -> str:
        """Authenticate ``user`` as the warehouse does when a session starts; return the
        user's name as stored (see :func:`database_name`).

        ``password`` (a secret's) must be the user's password; None signs in with
        temporary credentials (IAM), which need no password. A missing user is created
        (``CREATE USER … PASSWORD NULL``, Redshift's ``PASSWORD DISABLE``) when
        ``create()`` says so — asked only then — and the sign-in fails otherwise.
        ``roles``, when given, become the user's database roles: those of them that exist
        are granted, and any other role the user holds is revoked; names of roles that
        do not exist are ignored. None leaves the user's roles as they are. A failed
        sign-in raises :class:`StandInAuthenticationError`.
        """
        name = database_name(user)
        failed = StandInAuthenticationError(AUTHENTICATION_FAILED.format(user=name))
        with self._sign_in_lock, psycopg.connect(self._uri, autocommit=True) as connection:
            row = connection.execute(
                "SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = %s", (name,)
            ).fetchone()
            if row is None:
                if not create():
                    raise failed
                connection.execute(f"CREATE USER {_pg_identifier(name)} PASSWORD NULL")
                row = (True, None)
            can_login, stored = row
            if not can_login or (
                password is not None and not password_matches(stored, name, password)
            ):
                raise failed
            if roles is not None:
                _set_roles(connection, name, roles)
        return name

    def close(self) -> None:
        """Stop the server (the data directory is kept), unless another live process still
        uses it; processes that died without letting go of it do not count."""
        prune_gone_handles(self._data_dir)
        self._server.cleanup()

    def delete(self) -> None:
        """Stop the server and remove its data directory."""
        self.close()
        shutil.rmtree(self._data_dir, ignore_errors=True)

    def __enter__(self) -> RedshiftStandIn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _session(self) -> psycopg.Connection:
        connection = psycopg.connect(self._uri, autocommit=True)
        for setting in _SESSION_SETTINGS:
            connection.execute(setting)
        level = ISOLATION_LEVELS[self.isolation]
        connection.execute(f"SET default_transaction_isolation = '{level}'")
        return connection

    def _run(self, cursor: psycopg.Cursor, statement: str, index: int) -> QueryResult:
        copy = parse_copy_from_s3(statement)
        if copy is not None:
            return QueryResult(rowcount=self._copy_from_s3(cursor, copy, index))
        cursor.execute(translate_statement(statement))
        if cursor.description is None:
            return QueryResult(rowcount=cursor.rowcount)
        return QueryResult(
            columns=[column.name for column in cursor.description],
            column_types=[_type_name(cursor, column.type_code) for column in cursor.description],
            rows=cursor.fetchall(),
            rowcount=cursor.rowcount,
        )

    def _copy_from_s3(self, cursor: psycopg.Cursor, copy: CopyFromS3, index: int) -> int:
        """The COPY reads S3 as the role it names; the rows go in as the session's user, so
        the user's INSERT privilege on the table is checked as for any other INSERT."""
        read, list_keys = self.copy_reader_for_role(copy.iam_role)
        sources = _CopySources(read, list_keys).objects(copy, index)
        with cursor.copy(copy.postgres_copy()) as sink:
            for bucket, key in sources:
                for chunk in _object_chunks(read(bucket, key), copy):
                    sink.write(chunk)
        return cursor.rowcount


@dataclass(frozen=True)
class _CopySources:
    """The objects one COPY reads, found through the reader and lister of its role."""

    read: S3Reader
    list_keys: Optional[S3Lister]

    def objects(self, copy: CopyFromS3, index: int) -> list[tuple[str, str]]:
        if copy.manifest:
            return self._manifest_objects(copy, index)
        return [(copy.bucket, key) for key in self._source_keys(copy, index)]

    def _manifest_objects(self, copy: CopyFromS3, index: int) -> list[tuple[str, str]]:
        """The objects a COPY manifest lists: each ``url`` names one object, not a prefix."""
        try:
            body = self.read(copy.bucket, copy.prefix)
            raw = body if isinstance(body, (bytes, bytearray)) else body.read()
            entries = json.loads(bytes(raw).decode("utf-8"))["entries"]
        except Exception as error:  # missing, unreadable or not a manifest: COPY fails
            raise StandInSqlError(
                f"Problem reading manifest file s3://{copy.bucket}/{copy.prefix}: {error}", index
            ) from error
        objects = []
        for entry in entries:
            location = _S3_URI.match(entry.get("url", ""))
            if not location:
                raise StandInSqlError(f"Manifest entry is not an s3:// URL: {entry!r}", index)
            bucket, key = location.group("bucket"), location.group("prefix")
            if self.list_keys is not None and key not in self.list_keys(bucket, key):
                if entry.get("mandatory"):
                    raise StandInSqlError(
                        f"Manifest file entry s3://{bucket}/{key} is mandatory but not found",
                        index,
                    )
                continue
            objects.append((bucket, key))
        return objects

    def _source_keys(self, copy: CopyFromS3, index: int) -> list[str]:
        if self.list_keys is None:
            return [copy.prefix]
        keys = sorted(key for key in self.list_keys(copy.bucket, copy.prefix))
        if not keys:
            raise StandInSqlError(
                f"The specified S3 prefix '{copy.prefix}' does not exist in {copy.bucket}", index
            )
        return keys


def _object_chunks(body: ObjectBody, copy: CopyFromS3) -> Iterator[bytes]:
    """An object's data as chunks for ``COPY FROM STDIN``: decompressed, header skipped."""
    stream: BinaryIO = io.BytesIO(body) if isinstance(body, (bytes, bytearray)) else body
    if copy.gzip:
        stream = gzip.GzipFile(fileobj=stream)  # type: ignore[assignment]
    try:
        for _ in range(copy.ignore_header):
            stream.readline()
        yield from iter(lambda: stream.read(_COPY_CHUNK_BYTES), b"")
    finally:
        stream.close()


def _set_roles(connection: psycopg.Connection, user: str, roles: Sequence[str]) -> None:
    """Make the existing roles among ``roles`` exactly the database roles ``user`` holds."""
    wanted = {
        name
        for (name,) in connection.execute(
            "SELECT rolname FROM pg_roles WHERE NOT rolcanlogin AND rolname = ANY(%s)",
            (list(roles),),
        )
    }
    held = {
        name
        for (name,) in connection.execute(
            "SELECT r.rolname FROM pg_auth_members m "
            "JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
            "WHERE u.rolname = %s",
            (user,),
        )
    }
    for role in sorted(wanted - held):
        connection.execute(f"GRANT {_pg_identifier(role)} TO {_pg_identifier(user)}")
    for role in sorted(held - wanted):
        connection.execute(f"REVOKE {_pg_identifier(role)} FROM {_pg_identifier(user)}")


def _redshift_message(connection: psycopg.Connection, statement: str, error: psycopg.Error) -> str:
    """The error as Redshift words it where the stand-in's PostgreSQL words it differently."""
    message = (error.diag.message_primary or str(error)).strip()
    denied = _RELATION_DENIED.match(message)
    if isinstance(error, psycopg.errors.InsufficientPrivilege) and denied:
        return f"permission denied for relation {denied.group('name')}"
    check = _BYTE_CHECK_NAME.match(error.diag.constraint_name or "")
    if isinstance(error, psycopg.errors.CheckViolation) and check:
        kind = "character varying" if check.group("kind") == "varchar" else "character"
        message = (
            f"value too long for type {kind}({check.group('length')}) "
            f"(column {check.group('column')})"
        )
        if parse_copy_from_s3(statement) is not None:
            where = f"; {error.diag.context.strip()}" if error.diag.context else ""
            message = f"Load into table '{error.diag.table_name}' failed: {message}{where}"
    return message


def _takes_no_snapshot(statement: str) -> bool:
    """Whether ``statement`` leaves the transaction's snapshot untaken, as Redshift's LOCK does.

    Redshift takes a transaction's snapshot at its first SELECT, DML or CREATE/ALTER/DROP
    TABLE (https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html), so a
    transaction that starts with LOCK sees what was committed before it got the lock.
    """
    code = "\n".join(
        line for line in statement.splitlines() if not line.lstrip().startswith("--")
    ).lstrip()
    return code[:5].upper() == "LOCK " or code[:5].upper() == "LOCK\n"


def _conflict_message(
    connection: psycopg.Connection, statement: str, cycle: tuple[str, str]
) -> str:
    """Redshift's text for a transaction that lost a conflict: error 1023, the table's id,
    the two transactions (the last one the stand-in committed, and this one) and its pid."""
    table = _WRITTEN_TABLE.match(statement)
    table_id: Any = table.group("table") if table else "unknown"
    if table:
        try:
            row = connection.execute("SELECT to_regclass(%s)::oid", (table_id,)).fetchone()
            table_id = row[0] if row and row[0] is not None else table_id
        except psycopg.Error:  # the message matters more than the id
            pass
    return (
        f"{SERIALIZATION_CONFLICT} - {table_id}, transactions forming the cycle are: "
        f"{cycle[0]}, {cycle[1]} (pid:{connection.info.backend_pid})"
    )


def _type_name(cursor: psycopg.Cursor, type_code: int) -> str:
    info = cursor.connection.adapters.types.get(type_code)
    return info.name if info is not None else str(type_code)


class StandInWarehouse:
    """The warehouse port (:class:`flightpipe.warehouse.port.Warehouse`) over the stand-in."""

    def __init__(self, standin: RedshiftStandIn) -> None:
        self._standin = standin

    def query(self, sql: str) -> list[Row]:
        try:
            return self._standin.query(sql).as_dicts()
        except StandInSqlError as error:
            raise StatementError(f"statement FAILED: {error}") from error

    def execute_batch(self, statements: Iterable[str]) -> None:
        try:
            self._standin.execute_batch(list(statements))
        except StandInSqlError as error:
            raise StatementError(f"statement FAILED: {error}") from error


def boto3_object_store(s3_client: Any) -> tuple[S3Reader, S3Lister]:
    """``s3_reader`` and ``s3_lister`` over a boto3 S3 client (e.g. the local emulator's)."""

    def read(bucket: str, key: str) -> BinaryIO:
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"]

    def list_keys(bucket: str, prefix: str) -> list[str]:
        paginator = s3_client.get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    return read, list_keys
