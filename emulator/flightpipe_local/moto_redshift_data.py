"""Redshift Data API patch: statements run on the embedded warehouse.

moto's ``redshift-data`` runs no SQL: statements stay STARTED forever and every
result is the same canned table, and ``BatchExecuteStatement`` does not exist.
Here the service's request handlers (``moto/redshiftdata/responses.py``, over the
backend in ``moto/redshiftdata/models.py``) are replaced by :class:`LocalDataApi`:
``ExecuteStatement`` and ``BatchExecuteStatement`` (one transaction) run
asynchronously on :class:`~flightpipe_local.redshift_standin.RedshiftStandIn`,
``DescribeStatement`` reports SUBMITTED → STARTED → FINISHED / FAILED / ABORTED
with sub-statements, ``GetStatementResult`` returns the real rows in the Data
API's record format, and ``CancelStatement`` aborts. Only the deployed workgroup or
cluster is accepted. Tests inject a failure into a statement with
:meth:`LocalDataApi.inject_failure`, and hold a request before it runs with
:meth:`LocalDataApi.hold` (to make one load commit after another).

Each request signs in as Redshift would sign it in (:mod:`flightpipe_local.data_api_sign_in`):
the caller is authorized for the credentials it uses when it calls ``ExecuteStatement`` or
``BatchExecuteStatement``, and every statement then runs as that database user — a secret's
user, ``IAMR:<role name>`` with the roles of its ``RedshiftDbRoles`` tag, or a cluster's
``DbUser`` — so a missing grant fails as on Redshift (``permission denied for schema …``).
Only the target's admin user, and the person's own clients without a secret, run as the
superuser. Each statement records its owner's IAM user id (``aws:userid``), which the
Data API's ``redshift-data:statement-owner-iam-userid`` condition key compares
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonredshiftdataapi.html).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from moto.redshiftdata import responses as redshiftdata_responses
from moto.redshiftdata.exceptions import ResourceNotFoundException, ValidationException

from flightpipe_local._patching import PatchSet
from flightpipe_local.data_api_sign_in import (
    SUPERUSER,
    SecretReader,
    SignIn,
    admin_users_of,
    moto_secret_reader,
    sign_in_for,
)
from flightpipe_local.deploy import ACCOUNT_ID
from flightpipe_local.iam.caller import ADMINISTRATOR, Caller
from flightpipe_local.redshift_standin import (
    QueryResult,
    RedshiftStandIn,
    StandInAuthenticationError,
    StandInSqlError,
)
from flightpipe_local.template import DEFAULT_REGION

SEAM_OWNER = redshiftdata_responses.RedshiftDataAPIServiceResponse
REPLACED = ("execute_statement", "describe_statement", "get_statement_result", "cancel_statement")
ADDED = ("batch_execute_statement",)

PAGE_ROWS = 1000
_TERMINAL = ("FINISHED", "FAILED", "ABORTED")


@dataclass
class _Fault:
    matches: Callable[[str], bool]
    message: str
    times: int


@dataclass
class Hold:
    """A request held before it runs: :attr:`reached` is set when one arrives, and it runs
    once :meth:`release` is called (or ``timeout_s`` has passed, so a test that fails
    cannot leave the warehouse waiting)."""

    matches: Callable[[Sequence[str]], bool]
    timeout_s: float
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    taken: bool = False

    def release(self) -> None:
        self.released.set()

    def wait(self) -> None:
        self.reached.set()
        self.released.wait(self.timeout_s)


@dataclass
class Statement:
    """One Data API request: a single statement or a batch, and what became of it."""

    id: str
    sqls: list[str]
    is_batch: bool
    target: dict[str, Any]
    status: str = "SUBMITTED"
    error: Optional[str] = None
    results: list[QueryResult] = field(default_factory=list)
    sub_status: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started: Optional[float] = None
    cancel_requested: bool = False
    # The IAM user id (aws:userid) of the caller that ran it: the statement's owner.
    owner_userid: Optional[str] = None
    # Who its statements run as (the superuser unless signed in as a database user).
    sign_in: SignIn = SUPERUSER

    @property
    def db_user(self) -> Optional[str]:
        """The database user the statements ran as; None for the superuser."""
        return self.sign_in.user

    def describe(self) -> dict[str, Any]:
        duration = int(((self.updated_at - self.started) if self.started else 0) * 1e9)
        first = self.results[0] if (self.results and not self.is_batch) else None
        data = {
            "Id": self.id,
            "Status": self.status,
            "QueryString": ";\n".join(self.sqls) if self.is_batch else self.sqls[0],
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at,
            "Duration": duration if self.status in _TERMINAL else -1,
            "HasResultSet": bool(first and first.has_result_set),
            "ResultRows": _result_rows(first) if first else -1,
            "ResultSize": -1,
            "RedshiftPid": 0,
            "RedshiftQueryId": 0,
            "IsBatchStatement": self.is_batch,
            **self.target,
        }
        if self.error:
            data["Error"] = self.error
        if self.is_batch:
            data["SubStatements"] = [self._sub(index) for index in range(len(self.sqls))]
        return data

    def _sub(self, index: int) -> dict[str, Any]:
        result = self.results[index] if index < len(self.results) else None
        sub = {
            "Id": f"{self.id}:{index + 1}",
            "QueryString": self.sqls[index],
            "Status": self.sub_status[index] if index < len(self.sub_status) else self.status,
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at,
            "HasResultSet": bool(result and result.has_result_set),
            "ResultRows": _result_rows(result) if result else -1,
            "Duration": -1,
        }
        if sub["Status"] == "FAILED" and self.error:
            sub["Error"] = self.error
        return sub


def _result_rows(result: QueryResult) -> int:
    return len(result.rows) if result.has_result_set else max(result.rowcount, 0)


def field_value(value: Any) -> dict[str, Any]:
    """One value in the Data API's record format."""
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"longValue": value}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"blobValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dt.datetime):
        return {"stringValue": value.isoformat(sep=" ")}
    if isinstance(value, (dt.date, dt.time, decimal.Decimal)):
        return {"stringValue": str(value)}
    return {"stringValue": str(value)}


def column_metadata(result: QueryResult) -> list[dict[str, Any]]:
    types = result.column_types or ["varchar"] * len(result.columns)
    return [
        {"name": name, "label": name, "typeName": type_name, "nullable": 1, "isSigned": True}
        for name, type_name in zip(result.columns, types)
    ]


class LocalDataApi:
    """The Redshift Data API's statement lifecycle over the embedded warehouse."""

    def __init__(
        self,
        standin: RedshiftStandIn,
        workgroups: Sequence[str] = (),
        clusters: Sequence[str] = (),
        max_workers: int = 4,
        settle_seconds: float = 0.5,
        *,
        read_secret: SecretReader = moto_secret_reader,
        admin_users: Optional[Mapping[str, str]] = None,
    ) -> None:
        """``read_secret(secret_id, region, account)`` reads a secret's JSON document (by
        default from moto's Secrets Manager); ``admin_users`` maps a workgroup or cluster to
        its admin user's name, whose secret signs in as the superuser (see
        :meth:`register_admins`)."""
        self._standin = standin
        self.workgroups = set(workgroups)
        self.clusters = set(clusters)
        self.admin_users: dict[str, str] = dict(admin_users or {})
        self.read_secret = read_secret
        self._statements: dict[str, Statement] = {}
        self._faults: list[_Fault] = []
        self._holds: list[Hold] = []
        self._settle = settle_seconds
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="data-api")

    def close(self) -> None:
        with self._lock:
            for hold in self._holds:
                hold.release()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def inject_failure(self, contains: str, message: str, times: int = 1) -> None:
        """Make the next ``times`` batches or statements with a statement containing
        ``contains`` (case-insensitive) fail at that statement with ``message``."""
        needle = contains.lower()
        with self._lock:
            self._faults.append(_Fault(lambda sql: needle in sql.lower(), message, times))

    def hold(self, matches: Callable[[Sequence[str]], bool], timeout_s: float = 120.0) -> Hold:
        """Hold the next request whose statements ``matches`` accepts before it runs (before
        its transaction begins), until the returned :class:`Hold` is released."""
        hold = Hold(matches, timeout_s)
        with self._lock:
            self._holds.append(hold)
        return hold

    def register_admins(self, deployment: Any, account: str = ACCOUNT_ID) -> dict[str, str]:
        """Learn each deployed workgroup's and cluster's admin user from the deployment
        (a :class:`flightpipe_local.deploy.Deployment`): the namespace's ``AdminUsername``,
        i.e. the username in RedshiftAdminSecret. Returns what it learnt."""
        admins = admin_users_of(deployment, self.read_secret, account)
        self.admin_users.update(admins)
        return admins

    def submit(
        self,
        sqls: list[str],
        is_batch: bool,
        params: dict[str, Any],
        caller: Caller,
        *,
        region: str = DEFAULT_REGION,
        account: str = ACCOUNT_ID,
    ) -> Statement:
        """Accept a request of ``caller``: validated, authorized and signed in as Redshift
        would (raising the Data API's error when IAM refuses it), then run asynchronously."""
        if not sqls or not all(isinstance(sql, str) and sql.strip() for sql in sqls):
            raise ValidationException("Sql must be a non-empty string")
        target = self._target(params)
        name = params.get("WorkgroupName") or params.get("ClusterIdentifier")
        sign_in = sign_in_for(
            caller,
            params,
            region=region,
            account=account,
            read_secret=self.read_secret,
            admin_user=self.admin_users.get(name),
        )
        statement = Statement(
            str(uuid.uuid4()),
            list(sqls),
            is_batch,
            target,
            owner_userid=caller.userid,
            sign_in=sign_in,
        )
        with self._lock:
            self._statements[statement.id] = statement
        future = self._pool.submit(self._run, statement)
        # Quick statements are done by the first DescribeStatement, as on an idle warehouse;
        # long ones stay asynchronous.
        with contextlib.suppress(FuturesTimeout):
            future.result(timeout=self._settle)
        return statement

    def statement_owner(self, statement_id: str) -> Optional[str]:
        """The IAM user id of the caller that ran the statement (or a sub-statement of it),
        for ``redshift-data:statement-owner-iam-userid``; None for an unknown id."""
        base_id = (statement_id or "").split(":")[0]
        with self._lock:
            statement = self._statements.get(base_id)
        return statement.owner_userid if statement is not None else None

    def get(self, statement_id: str) -> Statement:
        base_id = (statement_id or "").split(":")[0]
        with self._lock:
            statement = self._statements.get(base_id)
        if statement is None:
            raise ResourceNotFoundException()
        return statement

    def cancel(self, statement_id: str) -> None:
        statement = self.get(statement_id)
        with self._lock:
            if statement.status in _TERMINAL:
                raise ValidationException(
                    f"Could not cancel a query that is already in {statement.status} state "
                    f"with ID: {statement_id}"
                )
            statement.cancel_requested = True
            if statement.status == "SUBMITTED":
                self._finish(statement, "ABORTED", "Query cancelled by the user")
                return
        self._cancel_backends(statement)

    def result(self, statement_id: str, next_token: Optional[str]) -> dict[str, Any]:
        statement = self.get(statement_id)
        index = int(statement_id.split(":")[1]) - 1 if ":" in statement_id else 0
        if statement.is_batch and ":" not in statement_id:
            raise ValidationException("Use a sub-statement id (<id>:<n>) for a batch's results")
        if statement.status != "FINISHED" or index >= len(statement.results):
            raise ValidationException(
                f"Query does not have result. Please check query status with DescribeStatement."
                f" Status: {statement.status}"
            )
        result = statement.results[index]
        if not result.has_result_set:
            raise ValidationException("Query does not have result. Please check query status.")
        start = int(next_token or 0)
        page = result.rows[start : start + PAGE_ROWS]
        response: dict[str, Any] = {
            "ColumnMetadata": column_metadata(result),
            "Records": [[field_value(value) for value in row] for row in page],
            "TotalNumRows": len(result.rows),
        }
        if start + PAGE_ROWS < len(result.rows):
            response["NextToken"] = str(start + PAGE_ROWS)
        return response

    def _target(self, params: dict[str, Any]) -> dict[str, Any]:
        workgroup = params.get("WorkgroupName")
        cluster = params.get("ClusterIdentifier")
        if bool(workgroup) == bool(cluster):
            raise ValidationException("Specify exactly one of WorkgroupName or ClusterIdentifier")
        if workgroup and workgroup not in self.workgroups:
            raise ValidationException(f"Workgroup {workgroup} not found.")
        if cluster and cluster not in self.clusters:
            raise ValidationException(f"Cluster {cluster} not found.")
        target = {"Database": params.get("Database") or "dev"}
        for key in ("WorkgroupName", "ClusterIdentifier", "SecretArn", "DbUser"):
            if params.get(key):
                target[key] = params[key]
        return target

    def _run(self, statement: Statement) -> None:
        with self._lock:
            if statement.status != "SUBMITTED":
                return
            statement.status = "STARTED"
            statement.started = statement.updated_at = time.time()
        hold = self._hold_for(statement.sqls)
        if hold is not None:
            hold.wait()
        sqls = self._with_faults(statement.sqls)
        try:
            user = self._signed_in(statement.sign_in)
            results = self._standin.execute_batch(sqls, user=user)
        except StandInSqlError as error:
            failed = min(error.statement_index, len(sqls) - 1)
            with self._lock:
                statement.sub_status = (
                    ["FINISHED"] * failed + ["FAILED"] + ["ABORTED"] * (len(sqls) - failed - 1)
                )
                severity = "FATAL" if isinstance(error, StandInAuthenticationError) else "ERROR"
                if statement.cancel_requested:
                    self._finish(statement, "ABORTED", "Query cancelled by the user")
                else:
                    self._finish(statement, "FAILED", f"{severity}: {error}")
            return
        except Exception as error:  # the warehouse itself broke
            with self._lock:
                self._finish(statement, "FAILED", f"ERROR: {type(error).__name__}: {error}")
            return
        with self._lock:
            statement.results = results
            statement.sub_status = ["FINISHED"] * len(sqls)
            self._finish(statement, "FINISHED", None)

    def _signed_in(self, sign_in: SignIn) -> Optional[str]:
        """Sign in as the warehouse does when the Data API opens the request's session."""
        if sign_in.user is None:
            return None
        return self._standin.sign_in(
            sign_in.user, password=sign_in.password, create=sign_in.create, roles=sign_in.roles
        )

    def _finish(self, statement: Statement, status: str, error: Optional[str]) -> None:
        statement.status = status
        statement.error = error
        statement.updated_at = time.time()

    def _hold_for(self, sqls: list[str]) -> Optional[Hold]:
        with self._lock:
            for hold in self._holds:
                if not hold.taken and hold.matches(sqls):
                    hold.taken = True
                    return hold
        return None

    def _with_faults(self, sqls: list[str]) -> list[str]:
        with self._lock:
            for fault in self._faults:
                hits = [i for i, sql in enumerate(sqls) if fault.matches(sql)]
                if fault.times > 0 and hits:
                    fault.times -= 1
                    failing = list(sqls)
                    failing[hits[0]] = _raise_statement(fault.message)
                    return failing
        return sqls

    def _cancel_backends(self, statement: Statement) -> None:
        """Cancel the warehouse sessions running this statement's SQL."""
        with self._standin.connect() as connection:
            connection.autocommit = True
            connection.execute(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND state <> 'idle' AND query = ANY(%s)",
                (statement.sqls,),
            )


def _raise_statement(message: str) -> str:
    body = message.replace("$", "")
    return f"DO $fault$ BEGIN RAISE EXCEPTION '%', $msg${body}$msg$; END $fault$"


def _respond(payload: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    return 200, {}, json.dumps(payload)


def _administrator(response: Any) -> Caller:
    return ADMINISTRATOR


def install(
    patches: PatchSet, api: LocalDataApi, caller_of: Callable[[Any], Caller] = _administrator
) -> None:
    """Serve the Data API's operations from ``api``; ``caller_of(response)`` is the caller of
    the request a moto response object is serving (by default the administrator)."""

    def _submitted(statement: Statement) -> tuple[int, dict[str, str], str]:
        return _respond({"Id": statement.id, "CreatedAt": statement.created_at, **statement.target})

    def _submit(self: Any, sqls: list[str], is_batch: bool, params: dict[str, Any]) -> Statement:
        return api.submit(
            sqls,
            is_batch,
            params,
            caller_of(self),
            region=getattr(self, "region", None) or DEFAULT_REGION,
            account=getattr(self, "current_account", None) or ACCOUNT_ID,
        )

    def execute_statement(self: Any) -> tuple[int, dict[str, str], str]:
        params = json.loads(self.body or "{}")
        return _submitted(_submit(self, [params.get("Sql", "")], False, params))

    def batch_execute_statement(self: Any) -> tuple[int, dict[str, str], str]:
        params = json.loads(self.body or "{}")
        return _submitted(_submit(self, list(params.get("Sqls") or []), True, params))

    def describe_statement(self: Any) -> tuple[int, dict[str, str], str]:
        return _respond(api.get(self._get_param("Id")).describe())

    def get_statement_result(self: Any) -> tuple[int, dict[str, str], str]:
        return _respond(api.result(self._get_param("Id"), self._get_param("NextToken")))

    def cancel_statement(self: Any) -> tuple[int, dict[str, str], str]:
        api.cancel(self._get_param("Id"))
        return _respond({"Status": True})

    handlers = {
        "execute_statement": execute_statement,
        "describe_statement": describe_statement,
        "get_statement_result": get_statement_result,
        "cancel_statement": cancel_statement,
    }
    for name, handler in handlers.items():
        patches.replace(SEAM_OWNER, name, handler)
    patches.add(SEAM_OWNER, "batch_execute_statement", batch_execute_statement)
