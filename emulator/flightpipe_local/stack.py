"""The local stack: moto, patched, plus the embedded warehouse, deployed from serverless.yml.

One process serves it all on loopback: a moto server (real Step Functions
execution) with the patches of this package, the PostgreSQL stand-in for
Redshift, and the resources of the packaged CloudFormation template. Code that
runs "in AWS" runs as it deploys, on the runtimes AWS uses, each in its own
process with its SDK pointed at the emulator: the Lambdas from the zip
``sls package`` builds, the Glue job from the script and wheel the deploy
uploads (see :mod:`flightpipe_local.moto_lambda` and
:mod:`flightpipe_local.moto_glue_jobs`).

With a state directory the stack keeps there, beside the warehouse, what its emulated
AWS holds (:mod:`flightpipe_local.stack_memory`), holds the directory locked while it
runs, and clears at start what a killed stack left (:mod:`flightpipe_local.leftovers`);
its worker processes end with it however it ends (:mod:`flightpipe_local.processes`).
Without one, every start is a clean slate and nothing is kept.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Optional

import boto3
import boto3.session
from botocore.config import Config

from flightpipe_local import (
    moto_events,
    moto_glue_crawler,
    moto_glue_crawls,
    moto_glue_jobs,
    moto_iam,
    moto_lambda,
    moto_redshift_data,
    moto_s3_multipart,
    moto_sfn_credentials,
    moto_sfn_glue,
    moto_sfn_overheads,
    moto_sfn_status_events,
    moto_sfn_time,
    moto_sns,
)
from flightpipe_local._patching import PatchSet
from flightpipe_local.deploy import ACCOUNT_ID, Deployer, Deployment, upload_glue_assets
from flightpipe_local.glue_environments import JobEnvironments
from flightpipe_local.iam import least_privilege
from flightpipe_local.iam.enforcement import Authorizer
from flightpipe_local.iam.sessions import RoleSessions, SessionCredentials
from flightpipe_local.leftovers import (
    GLUE_SCRATCH,
    StateDirBusy,
    StateDirLock,
    clear_leftovers,
    make_work_dir,
)
from flightpipe_local.processes import WORKERS_FILE, WorkerProcesses
from flightpipe_local.redshift_standin import RedshiftStandIn, boto3_object_store
from flightpipe_local.redshift_wire import RedshiftWireFront, WarehouseEndpoint, postgres_login
from flightpipe_local.signals import deferred
from flightpipe_local.stack_memory import MEMORY_DIR, StackMemory
from flightpipe_local.template import DEFAULT_REGION, DEFAULT_STAGE, PackagedStack, package

LOOPBACK = "127.0.0.1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_UNSET_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CA_BUNDLE")
_ACTIVE = threading.Lock()
# Inherited by the runtimes' processes: what a process needs to start, nothing about the account.
_RUNTIME_INHERITED = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "PIP_INDEX_URL",
    "JAVA_HOME",  # the Spark job's JVM
)
# A directory each stack leaves its roles' recorded calls in when it stops (for the report of
# flightpipe_local.iam.least_privilege).
CALL_LOG_VARIABLE = "FLIGHTPIPE_IAM_CALL_LOG"
# Job libraries installed from PyPI, kept between stacks: installing takes seconds.
GLUE_LIBRARY_CACHE = Path(".state") / "cache" / "glue-libraries"

Echo = Callable[[str], None]
# The Data API's condition key naming who ran a statement, on the actions that follow one
# (https://docs.aws.amazon.com/redshift/latest/mgmt/data-api-iam.html).
STATEMENT_OWNER_KEY = "redshift-data:statement-owner-iam-userid"
STATEMENT_OWNER_ACTIONS = (
    "redshift-data:DescribeStatement",
    "redshift-data:GetStatementResult",
    "redshift-data:CancelStatement",
)


def repo_root() -> Path:
    """The repository this package is installed from (serverless.yml beside the package)."""
    return Path(__file__).resolve().parents[2]


class StackError(RuntimeError):
    """The local stack could not start."""


class EmulatedStack:
    """Start with :meth:`start` (or ``with``), use :meth:`client`, end with :meth:`stop`."""

    def __init__(
        self,
        repo: Optional[Path] = None,
        state_dir: Optional[Path] = None,
        time_scale: float = moto_sfn_time.DEFAULT_SCALE,
        retry_time_scale: float = moto_sfn_time.DEFAULT_RETRY_SCALE,
        port: int = 0,
        echo: Optional[Echo] = None,
        stage: str = DEFAULT_STAGE,
        region: str = DEFAULT_REGION,
        packaged: Optional[PackagedStack] = None,
        encode_event_keys: bool = False,
        warehouse_port: int = 0,
        params: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.repo = (repo or repo_root()).resolve()
        # Stage parameters, as `sls deploy --param "name=value"` sets them (package() passes
        # them to `sls package`); ignored when a ready ``packaged`` template is given.
        self.params = dict(packaged.params if packaged is not None else params or {})
        self.state_dir = Path(state_dir).resolve() if state_dir else None
        self.time_scale = time_scale
        self.retry_time_scale = retry_time_scale
        # S3 events carry URL-encoded object keys (as classic S3 notifications do).
        self.encode_event_keys = encode_event_keys
        self.region = region
        self.stage = stage
        self._port = port
        self._warehouse_port = warehouse_port
        self._packaged = packaged
        self._echo = echo or (lambda message: None)
        self._patches = PatchSet()
        self._saved_env: dict[str, Optional[str]] = {}
        self._server: Any = None
        self._temp_dir: Optional[Path] = None
        self._client_lock = threading.Lock()
        self.functions: Optional[moto_lambda.FunctionRuntimes] = None
        self.jobs: Optional[moto_glue_jobs.JobRunner] = None
        self._owns_lock = False
        self.endpoint_url = ""
        self.standin: Optional[RedshiftStandIn] = None
        self.warehouse_front: Optional[RedshiftWireFront] = None
        self.data_api: Optional[moto_redshift_data.LocalDataApi] = None
        self.crawlers: Optional[moto_glue_crawler.CrawlerEmulator] = None
        self.notices = moto_sns.NoticeBoard()
        # Who may do what: every call of a stack role's session is decided and recorded here.
        self.authorizer = Authorizer()
        self.sessions = RoleSessions(region)
        self.deployment: Optional[Deployment] = None
        self._session = boto3.session.Session()
        self.workers: Optional[WorkerProcesses] = None
        # What the stack keeps in its state directory across restarts (None without one).
        self.memory: Optional[StackMemory] = None
        self._state_lock: Optional[StateDirLock] = None
        # What the start cleared of earlier stacks and restored from the state directory,
        # one line each (also given to ``echo``).
        self.notes: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> EmulatedStack:
        if not _ACTIVE.acquire(blocking=False):
            raise StackError("a local stack is already running in this process")
        self._owns_lock = True
        try:
            given = "".join(f" --param {n}={v}" for n, v in self.params.items())
            self._echo(f"packaging serverless.yml (sls package{given}, skipped when up to date)")
            packaged = self._packaged or package(
                self.repo, stage=self.stage, region=self.region, params=self.params
            )
            self._hold_state_dir()
            for line in clear_leftovers(self.state_dir):
                self._note(line)
            self._temp_dir = make_work_dir()
            self.workers = WorkerProcesses(self._temp_dir / WORKERS_FILE)
            self._start_server()
            self._echo("starting the embedded warehouse (PostgreSQL)")
            with deferred():  # a postmaster started but not yet held would be orphaned
                self._start_warehouse()
            self._install_patches()
            self._echo(f"deploying stack {packaged.stack_name} into the emulator")
            deployer = Deployer(
                packaged.template,
                self.client,
                packaged.stack_name,
                self.region,
                artifacts_dir=packaged.path.parent,
            )
            self.deployment = deployer.deploy()
            self._remember()
            upload_glue_assets(self.client("s3"), self.repo, packaged.glue_assets, self.deployment)
            assert self.data_api is not None
            self.data_api.workgroups.update(self.deployment.workgroups)
            self.data_api.clusters.update(self.deployment.clusters)
            self.data_api.register_admins(self.deployment)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything that was started and restore moto and the environment.

        A stop signal (SIGTERM, SIGHUP) arriving meanwhile takes effect once all is stopped.
        """
        with deferred():
            self._stop()

    def _stop(self) -> None:
        if self.memory is not None:
            self.memory.close()  # first: what the stopping does to runs is not their outcome
        self._save_call_snapshot()
        self._patches.restore()
        if self.functions is not None:
            self.functions.close()
            self.functions = None
        if self.jobs is not None:
            self.jobs.close()
            self.jobs = None
        if self.workers is not None:
            self.workers.close()
            self.workers = None
        if self.data_api is not None:
            self.data_api.close()
            self.data_api = None
        if self.warehouse_front is not None:
            self.warehouse_front.stop()
            self.warehouse_front = None
        if self.standin is not None:
            self.standin.close()
            self.standin = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        if self._state_lock is not None:
            self._state_lock.release()
            self._state_lock = None
        if self._owns_lock:
            self._owns_lock = False
            _ACTIVE.release()

    def _save_call_snapshot(self) -> None:
        """Leave the roles' grants and recorded calls for the least-privilege report when
        ``FLIGHTPIPE_IAM_CALL_LOG`` names a directory (the test suite sets it)."""
        directory = os.environ.get(CALL_LOG_VARIABLE)
        if not directory or self.deployment is None or self._server is None:
            return
        roles = {
            str(role.attributes["Arn"]): role.ref
            for role in self.deployment.of_type("AWS::IAM::Role")
        }
        path = Path(directory) / f"{uuid.uuid4()}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        taken = least_privilege.snapshot(self.authorizer.log.calls, roles)
        path.write_text(json.dumps(taken), encoding="utf-8")

    def __enter__(self) -> EmulatedStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client of the emulator.

        Creation is serialised: sessions are not thread-safe.
        """
        with self._client_lock:
            return self._session.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            )

    def role_client(self, service: str, credentials: SessionCredentials) -> Any:
        """A boto3 client of the emulator signing as a role session."""
        with self._client_lock:
            return self._session.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}),
                **credentials.client_arguments(),
            )

    # -- the principals' sessions ------------------------------------------------------------

    def _role_arn(self, role: str) -> str:
        return role if role.startswith("arn:") else f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"

    def _function_credentials(self, function: Any) -> dict[str, str]:
        """Lambda assumes the function's execution role for each execution environment."""
        return self.sessions.assume(
            self._role_arn(function.role),
            "lambda.amazonaws.com",
            function.function_name,
            source_arn=function.function_arn,
        ).environment

    def _job_session(self, job: Any) -> SessionCredentials:
        """Glue assumes the job's role for a run."""
        return self.sessions.assume(
            self._role_arn(job.role),
            "glue.amazonaws.com",
            "GlueJobRunnerSession",
            source_arn=f"arn:aws:glue:{self.region}:{ACCOUNT_ID}:job/{job.name}",
        )

    def _job_credentials(self, job: Any) -> dict[str, str]:
        return self._job_session(job).environment

    def _crawler_client(self, service: str) -> Any:
        """A client of the crawler's role: Glue crawls and writes the catalog as that role."""
        crawler = self._deployed().one("AWS::Glue::Crawler")
        credentials = self.sessions.assume(
            self._role_arn(str(crawler.properties["Role"])),
            "glue.amazonaws.com",
            "AWS-Crawler",
            source_arn=f"arn:aws:glue:{self.region}:{ACCOUNT_ID}:crawler/{crawler.ref}",
        )
        return self.role_client(service, credentials)

    def _copy_reader(self, role: Optional[str]) -> tuple[Any, Any]:
        """What a COPY reads S3 through: a session of the role it names, assumed by Redshift
        (https://docs.aws.amazon.com/redshift/latest/mgmt/copy-unload-iam-role.html). A COPY
        naming no role (none of the pipeline's) reads as the account."""
        if not role or not role.startswith("arn:"):
            return boto3_object_store(self.client("s3"))
        credentials = self.sessions.assume(
            role, "redshift-serverless.amazonaws.com", "RedshiftIamRoleSession"
        )
        return boto3_object_store(self.role_client("s3", credentials))

    def _start_as_target_role(self, rule: Any, target: dict, execution_input: str) -> str:
        """EventBridge starts a state machine target as the target's RoleArn
        (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html)."""
        role_arn = target.get("RoleArn")
        if not role_arn:
            return moto_events.start_execution(target["Arn"], execution_input)
        credentials = self.sessions.assume(
            role_arn, "events.amazonaws.com", "events-rule", source_arn=rule.arn
        )
        states = self.role_client("stepfunctions", credentials)
        return states.start_execution(
            stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=execution_input
        )["executionArn"]

    @property
    def environment(self) -> dict[str, str]:
        """What a shell or a boto3 script exports to talk to the stack."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **CREDENTIALS,
        }

    @property
    def bucket(self) -> str:
        return self._deployed().one("AWS::S3::Bucket", "Data").ref

    @property
    def state_machine_arn(self) -> str:
        return self._deployed().one("AWS::StepFunctions::StateMachine", "PipelineStateMachine").ref

    @property
    def crawler_name(self) -> str:
        return self._deployed().one("AWS::Glue::Crawler").ref

    @property
    def job_name(self) -> str:
        """The Python shell ETL job (the stack's output GlueJobName)."""
        return self._output("GlueJobName")

    @property
    def spark_job_name(self) -> str:
        """The Spark ETL job (the stack's output SparkGlueJobName)."""
        return self._output("SparkGlueJobName")

    def _output(self, name: str) -> str:
        outputs = self._deployed().outputs
        if not outputs.get(name):
            raise StackError(f"the stack has no output {name}")
        return str(outputs[name])

    @property
    def warehouse_endpoint(self) -> WarehouseEndpoint:
        """Where ``redshift_connector`` (``ssl=False``) reaches the warehouse over TCP."""
        if self.warehouse_front is None or self.standin is None:
            raise StackError("the stack is not started")
        user, database = postgres_login(self.standin.uri)
        return self.warehouse_front.endpoint(database, user)

    def _deployed(self) -> Deployment:
        if self.deployment is None:
            raise StackError("the stack is not deployed")
        return self.deployment

    # -- start-up steps --------------------------------------------------------------------

    def _note(self, line: str) -> None:
        self.notes.append(line)
        self._echo(line)

    def _hold_state_dir(self) -> None:
        """Lock the state directory for this stack: one stack at a time writes it, and what
        it holds of a stack that no longer holds the lock is stale."""
        if self.state_dir is None:
            return
        lock = StateDirLock(self.state_dir)
        try:
            lock.acquire()
        except StateDirBusy as busy:
            raise StackError(str(busy)) from None
        self._state_lock = lock

    def _remember(self) -> None:
        """Put back what the state directory kept, then record every change to it."""
        if self.state_dir is None:
            return
        assert self.crawlers is not None and self.jobs is not None
        memory = StackMemory(self.state_dir / MEMORY_DIR, ACCOUNT_ID, self.region)
        memory.install(self._patches)
        restored = memory.restore(self.notices)
        for line in restored.lines(memory.directory):
            self._note(line)
        self.crawlers.on_crawl = memory.crawl_changed
        self.jobs.on_run = memory.job_run_changed
        self.notices.recorder = memory.notice_published
        memory.resume()
        self.memory = memory

    def _start_server(self) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=self._port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self._set_env({"MOTO_PORT": str(port), **self.environment})
        self._post("/moto-api/reset", {})
        self._post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})

    def _post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.endpoint_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def _set_env(self, values: dict[str, str]) -> None:
        for key in (*values, *_UNSET_ENV):
            self._saved_env.setdefault(key, os.environ.get(key))
        for key in _UNSET_ENV:
            os.environ.pop(key, None)
        os.environ.update(values)

    @property
    def work_dir(self) -> Path:
        """Where the stack keeps what it needs while it runs: the functions' code, the job
        runs' scratch directories (removed when it stops; by the next start when killed)."""
        if self._temp_dir is None:
            raise StackError("the stack is not started")
        return self._temp_dir

    @property
    def log_dir(self) -> Path:
        """The functions' and job runs' logs: kept in the state dir when there is one."""
        return (self.state_dir or self.work_dir) / "logs"

    @property
    def runtime_environment(self) -> dict[str, str]:
        """What every Lambda and Glue process starts with: the account's endpoint, no more."""
        inherited = {key: os.environ[key] for key in _RUNTIME_INHERITED if key in os.environ}
        return {**inherited, **self.environment}

    def _start_warehouse(self) -> None:
        data_dir = (self.state_dir or self.work_dir) / "warehouse"
        reader, lister = boto3_object_store(self.client("s3"))
        self.standin = RedshiftStandIn(data_dir, reader, lister)
        for pid in self.standin.pruned_handles:
            self._note(
                f"the warehouse still listed process {pid} as its user, which is gone: "
                "dropped from its list (else a clean stop would leave PostgreSQL running)"
            )
        self.standin.copy_reader_for_role = self._copy_reader
        self.data_api = moto_redshift_data.LocalDataApi(self.standin)
        # Redshift's own drivers connect here: the front does Redshift's start-up.
        self.warehouse_front = RedshiftWireFront(
            self.standin.uri, self._warehouse_port, self.standin.session_parameters
        ).start()

    def _install_patches(self) -> None:
        assert self.data_api is not None
        patches = self._patches
        moto_iam.install(patches, self.authorizer)
        self.functions = moto_lambda.FunctionRuntimes(
            self.repo,
            self.work_dir,
            self.runtime_environment,
            self.log_dir,
            credentials_for=self._function_credentials,
            workers=self.workers,
        )
        moto_lambda.install(patches, self.functions)
        moto_s3_multipart.install(patches)
        moto_events.install(
            patches, encode_keys=self.encode_event_keys, starter=self._start_as_target_role
        )
        moto_sfn_credentials.install(patches, self.sessions)
        moto_sfn_glue.install(patches)
        moto_sfn_time.install(patches, self.time_scale, self.retry_time_scale)
        moto_sfn_overheads.install(patches)
        moto_sfn_status_events.install(patches)
        self.crawlers = moto_glue_crawler.CrawlerEmulator(
            lambda: self._crawler_client("s3"),
            lambda: self._crawler_client("glue"),
            sqs_client=lambda: self._crawler_client("sqs"),
        )
        moto_glue_crawler.install(patches, self.crawlers)
        moto_glue_crawls.install(patches)
        self.jobs = moto_glue_jobs.JobRunner(
            self.repo,
            moto_glue_jobs.s3_fetcher(lambda: self.client("s3")),
            JobEnvironments(self.repo / GLUE_LIBRARY_CACHE),
            self.runtime_environment,
            self.log_dir / "glue",
            credentials_for=self._job_credentials,
            fetch_as=lambda job: moto_glue_jobs.s3_fetcher(
                lambda: self.role_client("s3", self._job_session(job))
            ),
            work_dir=self.work_dir / GLUE_SCRATCH,
            workers=self.workers,
        )
        moto_glue_jobs.install(patches, self.jobs)
        moto_redshift_data.install(
            patches, self.data_api, caller_of=moto_iam.caller_resolver(self.authorizer)
        )
        data_api = self.data_api

        def statement_owner(action: str, params: Mapping[str, Any]) -> dict[str, Any]:
            owner = data_api.statement_owner(str(params.get("Id") or ""))
            return {STATEMENT_OWNER_KEY: owner} if owner else {}

        for action in STATEMENT_OWNER_ACTIONS:
            self.authorizer.add_context_provider(action, statement_owner)
        moto_sns.install(patches, self.notices)
