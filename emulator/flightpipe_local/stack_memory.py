"""What the emulated AWS side of a local stack remembers across restarts, beside the warehouse.

moto keeps all its state in memory and has no persistence, so a stack that restarts
on a state directory would find its warehouse as it was and everything else empty:
files in the warehouse's ledger that exist nowhere, files uploaded before the stop
that neither ``flightpipe status`` nor ``flightpipe backfill`` can see. Here the
state that matters is written through to ``<state dir>/aws`` as it changes, so a
stack killed with SIGKILL (which saves nothing on its way out) loses nothing that
was acknowledged:

- every S3 object version of the stack's buckets: its body (a file of its own,
  written once) and its version id, ETag, last-modified time, storage class,
  metadata and encryption, recorded as the key's whole version list whenever the
  key changes (put, copy, multipart completion, delete marker, deletion). The
  record is written inside the change, before S3 sends the change's event, so an
  execution an upload started never outlives the upload's object;
- every Step Functions execution: its start (name, input, state machine, role,
  time) and each history event as the interpreter publishes it;
- every crawl of a crawler and every Glue job run, when it starts and when it ends;
- every SNS notice.

On the next start the deployment runs into a fresh moto as before (same stack name:
same bucket names and state machine ARN) and the journal is replayed into it,
through moto's models, without sending any event: objects keep their version ids
and times, executions their histories. What was running when the earlier stack
stopped cannot resume here (AWS would have carried on; this machine cannot): an
execution ends ``ABORTED`` with :data:`STOPPED_ERROR`, its history closed by an
``ExecutionAborted`` event saying why, so ``status`` shows its file without an
outcome and ``backfill --failed-only`` picks it; a crawl ends ``STOPPED``
(``CANCELLED``, which covers no file), a job run ``FAILED``, each with
:data:`STOPPED_MESSAGE`. The replayed state is then written back as a fresh journal
(bodies no version refers to are deleted) and recording resumes.

The Data Catalog tables and SQS messages are not kept: the first crawl after a restart
lists its whole target again (see :mod:`flightpipe_local.moto_glue_crawler`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.glue import models as glue_models
from moto.s3 import models as s3_models
from moto.s3.utils import _VersionedKeyStore
from moto.stepfunctions.parser.api import ExecutionStatus, GetExecutionHistoryOutput
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
)
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from flightpipe_local._patching import PatchSet
from flightpipe_local.moto_glue_crawler import BEFORE_RESTART
from flightpipe_local.moto_sns import Notice, NoticeBoard

MEMORY_DIR = "aws"
JOURNAL_FILE = "journal.jsonl"
BODIES_DIR = "objects"
STOPPED_ERROR = "LocalStackStopped"
STOPPED_CAUSE = (
    "the local stack stopped while this execution ran; it cannot resume "
    "(flightpipe backfill --failed-only starts its file again)"
)
STOPPED_MESSAGE = "the local stack stopped while this {} ran"
TERMINAL_EVENTS = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
}
_DETAILS = {
    "ExecutionSucceeded": "executionSucceededEventDetails",
    "ExecutionFailed": "executionFailedEventDetails",
    "ExecutionAborted": "executionAbortedEventDetails",
    "ExecutionTimedOut": "executionTimedOutEventDetails",
}
_UNFINISHED_CRAWL = ("RUNNING", "STOPPING")
_UNFINISHED_RUN = ("STARTING", "RUNNING", "STOPPING", "WAITING")
# Attributes the memory sets on moto's objects (never names moto uses).
_BUCKET_TAG = "_flightpipe_bucket"
_BODY_TAG = "_flightpipe_body"
_ARN_TAG = "_flightpipe_execution_arn"

Record = dict[str, Any]


def _time(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _parse_time(text: Optional[str]) -> Optional[dt.datetime]:
    """An ISO time as written here or in a history event (``...Z``), zone kept as written."""
    if not text:
        return None
    return dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)


def _aware(moment: dt.datetime) -> dt.datetime:
    """moto keeps some times naive in UTC, Step Functions' aware: compare them as aware."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    return str(value)


class RestoredExecution(Execution):
    """An execution of an earlier stack: its description and history, replayed; nothing runs."""

    def __init__(self, events: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history_events = events

    def to_history_output(self) -> GetExecutionHistoryOutput:
        return GetExecutionHistoryOutput(events=[dict(event) for event in self.history_events])


@dataclass
class Restored:
    """What a start found in the state directory and put back into moto."""

    objects: int = 0
    versions: int = 0
    executions: int = 0
    unfinished_executions: int = 0
    crawls: int = 0
    job_runs: int = 0
    notices: int = 0
    # What could not be put back (its bucket, state machine, crawler or job is not deployed
    # now): kept in the journal for a later start, one line each.
    kept: list[str] = field(default_factory=list)

    def lines(self, directory: Path) -> list[str]:
        if not (self.versions or self.executions or self.crawls or self.job_runs or self.notices):
            return [*self.kept]
        summary = (
            f"restored from {directory}: {self.objects} S3 objects ({self.versions} versions), "
            f"{self.executions} executions, {self.crawls} crawls, {self.job_runs} Glue job runs, "
            f"{self.notices} SNS notices"
        )
        lines = [summary]
        if self.unfinished_executions:
            lines.append(
                f"{self.unfinished_executions} executions were running when the stack stopped: "
                f"ABORTED ({STOPPED_ERROR}); flightpipe backfill --failed-only starts their "
                "files again"
            )
        return [*lines, *self.kept]


class StackMemory:
    """The journal of one state directory: replayed at start, written through while running."""

    def __init__(self, directory: Path, account_id: str, region: str) -> None:
        self.directory = directory
        self._journal_path = directory / JOURNAL_FILE
        self._bodies = directory / BODIES_DIR
        self._account_id = account_id
        self._region = region
        self._lock = threading.Lock()
        self._file: Optional[Any] = None
        self._tagged: list[Any] = []

    # -- lifecycle -------------------------------------------------------------------------

    def install(self, patches: PatchSet) -> None:
        """Hook the changes to remember; nothing is written before :meth:`resume`."""
        memory = self

        def hook_after(owner: Any, name: str, after: Any) -> None:
            original = owner.__dict__[name]

            def hooked(self: Any, *args: Any, **kwargs: Any) -> Any:
                result = original(self, *args, **kwargs)
                after(self, *args, **kwargs)
                return result

            patches.replace(owner, name, hooked)

        for name in ("setlist", "__setitem__", "pop"):
            hook_after(
                _VersionedKeyStore,
                name,
                lambda store, key, *_, **__: memory.key_changed(store, key),
            )
        hook_after(s3_models.FakeKey, "set_metadata", lambda key, *_, **__: memory.key_set(key))

        original_start = Execution.__dict__["start"]

        def start(self: Any) -> None:
            memory.execution_started(self)
            original_start(self)

        patches.replace(Execution, "start", start)
        original_environment = ExecutionWorker.__dict__["_get_evaluation_environment"]

        def environment(self: Any) -> Any:
            env = original_environment(self)
            arn = self._evaluation_details.execution_details.arn
            env.event_manager.__dict__[_ARN_TAG] = arn
            return env

        patches.replace(ExecutionWorker, "_get_evaluation_environment", environment)
        original_publish = EventManager.__dict__["_publish_history_event"]

        def publish(self: Any, *args: Any, **kwargs: Any) -> None:
            original_publish(self, *args, **kwargs)  # under the manager's lock: in order
            arn = self.__dict__.get(_ARN_TAG)
            if arn is not None:
                memory.write({"kind": "event", "arn": arn, "event": self._history_event_list[-1]})

        patches.replace(EventManager, "_publish_history_event", publish)
        original_terminated = BaseExecutionWorkerCommunication.__dict__["terminated"]

        def terminated(self: Any) -> None:
            original_terminated(self)
            execution = self.execution
            record = {"kind": "stop_date", "arn": execution.exec_arn}
            memory.write({**record, "at": _time(execution.stop_date)})

        patches.replace(BaseExecutionWorkerCommunication, "terminated", terminated)
        patches.on_restore(self._untag)

    def restore(self, notices: NoticeBoard) -> Restored:
        """Put the journal's state into moto (call after the deployment, before :meth:`resume`)
        and write it back as the new journal."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._bodies.mkdir(exist_ok=True)
        records = self._read()
        restored = Restored()
        stops = [
            _aware(_parse_time(r["at"]) or dt.datetime.now(dt.timezone.utc))
            for r in records
            if r.get("kind") == "stopped"
        ]
        kept = [
            *self._restore_objects(records, restored),
            *self._restore_executions(records, stops, restored),
            *self._restore_crawls(records, stops, restored),
            *self._restore_job_runs(records, stops, restored),
        ]
        published = [r for r in records if r.get("kind") == "notice"]
        notices.restore(
            [
                Notice(r["topic_arn"], r.get("subject"), r["message"], float(r["published_at"]))
                for r in published
            ]
        )
        restored.notices = len(published)
        self._compact([*kept, *published])
        return restored

    def resume(self) -> None:
        """Start writing every change of the stack's buckets, executions, crawls, runs."""
        for bucket in list(self._s3().buckets.values()):
            bucket.keys.__dict__[_BUCKET_TAG] = bucket.name
            self._tagged.append(bucket.keys)
        with self._lock:
            self._file = self._journal_path.open("a", encoding="utf-8")

    def close(self) -> None:
        """Record that the stack stopped, then stop writing: what the stopping does to runs
        still going (killed job processes, failing executions) is not their outcome."""
        with self._lock:
            if self._file is None:
                return
            now = dt.datetime.now(dt.timezone.utc)
            self._file.write(json.dumps({"kind": "stopped", "at": now.isoformat()}) + "\n")
            self._file.close()
            self._file = None

    def _untag(self) -> None:
        for store in self._tagged:
            store.__dict__.pop(_BUCKET_TAG, None)
        self._tagged.clear()

    # -- recording ---------------------------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self._file is not None

    def write(self, record: Record) -> None:
        """Append one record; it is in the file (the kernel's) when this returns."""
        line = json.dumps(record, default=_json_default) + "\n"
        with self._lock:
            if self._file is None:
                return
            self._file.write(line)
            self._file.flush()

    def key_changed(self, store: Any, key: Any) -> None:
        bucket = store.__dict__.get(_BUCKET_TAG) if isinstance(store, dict) else None
        if bucket is None or not self.recording:
            return
        name = key.name if isinstance(key, s3_models.FakeKey) else key
        for version in list(store.getlist(name, []) or []):
            self._store_body(version)  # outside the journal's lock: bodies may be large
        with self._lock:
            if self._file is None:
                return
            versions = [self._version(v) for v in list(store.getlist(name, []) or [])]
            kept = [version for version in versions if version is not None]
            record = {"kind": "s3", "bucket": bucket, "key": name, "versions": kept}
            self._file.write(json.dumps(record, default=_json_default) + "\n")
            self._file.flush()

    def key_set(self, key: Any) -> None:
        """A key's metadata was set (after the put that made it): record the key again."""
        if not self.recording or not key.bucket_name:
            return
        bucket = self._s3().buckets.get(key.bucket_name)
        if bucket is not None and any(v is key for v in bucket.keys.getlist(key.name, []) or []):
            self.key_changed(bucket.keys, key.name)

    def _store_body(self, version: Any) -> Optional[str]:
        """Write an object version's body to a file of its own, once."""
        if not isinstance(version, s3_models.FakeKey):
            return None
        with version.lock:
            stored = version.__dict__.get(_BODY_TAG)
            if stored is not None or version.disposed:
                return stored
            name = uuid.uuid4().hex
            partial = self._bodies / f"{name}.partial"
            try:
                with partial.open("wb") as out:
                    version._value_buffer.seek(0)
                    shutil.copyfileobj(version._value_buffer, out, 1 << 20)
            except ValueError:  # disposed meanwhile (replaced): nothing to keep
                partial.unlink(missing_ok=True)
                return None
            os.replace(partial, self._bodies / name)
            version.__dict__[_BODY_TAG] = name
            version.__dict__["_flightpipe_etag"] = version.etag.strip('"')
            return name

    def _version(self, version: Any) -> Optional[Record]:
        if isinstance(version, s3_models.FakeDeleteMarker):
            return {
                "type": "marker",
                "version_id": version.version_id,
                "last_modified": _time(version.last_modified),
            }
        body = self._store_body(version)
        if body is None:
            return None
        return {
            "type": "object",
            "version_id": version._version_id,
            "body": body,
            "etag": version.__dict__["_flightpipe_etag"],
            "last_modified": _time(version.last_modified),
            "storage": version._storage_class,
            "metadata": dict(version._metadata),
            "versioned": version._is_versioned,
            "encryption": version.encryption,
            "kms_key_id": version.kms_key_id,
            "bucket_key_enabled": version.bucket_key_enabled,
            "checksum_algorithm": version.checksum_algorithm,
            "checksum_value": version.checksum_value,
        }

    def execution_started(self, execution: Any) -> None:
        self.write(
            {
                "kind": "execution",
                "arn": execution.exec_arn,
                "name": execution.name,
                "state_machine_arn": execution.state_machine_arn,
                "role_arn": execution.role_arn,
                "input": execution.execution_input,
                "start_date": _time(execution.start_date),
            }
        )

    def crawl_changed(self, crawler: Any, crawl: Any) -> None:
        self.write(
            {
                "kind": "crawl",
                "crawler": crawler.name,
                "id": crawl.crawl_id,
                "start": _time(crawl.start_time),
                "end": _time(crawl.end_time),
                "status": crawl.status,
                "error": getattr(crawl, "error_message", None),
                "event_mode": getattr(crawl, "event_mode", None),
            }
        )

    def job_run_changed(self, job: Any, run: Any) -> None:
        self.write(
            {
                "kind": "job_run",
                "job": job.name,
                "id": run.job_run_id,
                "arguments": run.arguments,
                "timeout": run.timeout,
                "started": _time(run.started_on),
                "completed": _time(run.completed_on),
                "status": run.status,
                "error": getattr(run, "error_message", None),
                "seconds": getattr(run, "execution_seconds", 0),
            }
        )

    def notice_published(self, notice: Notice) -> None:
        self.write(
            {
                "kind": "notice",
                "topic_arn": notice.topic_arn,
                "subject": notice.subject,
                "message": notice.message,
                "published_at": notice.published_at,
            }
        )

    # -- replay ------------------------------------------------------------------------------

    def _read(self) -> list[Record]:
        """The journal's records; a line the kill cut short is left out."""
        try:
            text = self._journal_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def _s3(self) -> Any:
        return s3_models.s3_backends[self._account_id]["aws"]

    def _restore_objects(self, records: list[Record], restored: Restored) -> list[Record]:
        latest: dict[tuple[str, str], Record] = {}
        for record in records:
            if record.get("kind") == "s3":
                latest[(record["bucket"], record["key"])] = record
        kept = []
        missing_buckets: dict[str, int] = {}
        for (bucket_name, key), record in latest.items():
            if not record["versions"]:
                continue  # deleted
            bucket = self._s3().buckets.get(bucket_name)
            if bucket is None:
                kept.append(record)
                missing_buckets[bucket_name] = missing_buckets.get(bucket_name, 0) + 1
                continue
            versions = self._rebuilt(bucket, key, record["versions"])
            if not versions:
                continue
            bucket.keys.setlist(key, versions)
            kept.append(record)
            restored.versions += len(versions)
            restored.objects += isinstance(versions[-1], s3_models.FakeKey)
        restored.kept += [
            f"kept {count} S3 keys of bucket {name} for later: no such bucket is deployed now"
            for name, count in missing_buckets.items()
        ]
        return kept

    def _rebuilt(self, bucket: Any, key: str, versions: list[Record]) -> list[Any]:
        built: list[Any] = []
        for version in versions:
            modified = _parse_time(version.get("last_modified"))
            if version["type"] == "marker":
                marker = s3_models.FakeDeleteMarker(
                    built[-1] if built else SimpleNamespace(name=key)
                )
                marker._version_id = version["version_id"]
                if modified is not None:
                    marker.last_modified = modified
                built.append(marker)
                continue
            body = self._bodies / version["body"]
            if not body.is_file():
                continue  # its body never reached the disk
            restored = s3_models.FakeKey(
                name=key,
                value=body.read_bytes(),
                account_id=self._account_id,
                region_name=bucket.region_name,
                storage=version.get("storage"),
                etag=version.get("etag"),
                is_versioned=bool(version.get("versioned")),
                version_id=version.get("version_id"),
                bucket_name=bucket.name,
                encryption=version.get("encryption"),
                kms_key_id=version.get("kms_key_id"),
                bucket_key_enabled=version.get("bucket_key_enabled"),
                checksum_value=version.get("checksum_value"),
            )
            restored._metadata.update(version.get("metadata") or {})
            restored.checksum_algorithm = version.get("checksum_algorithm")
            if modified is not None:
                restored.last_modified = modified
            restored.__dict__[_BODY_TAG] = version["body"]
            restored.__dict__["_flightpipe_etag"] = version.get("etag")
            built.append(restored)
        return built

    def _restore_executions(
        self, records: list[Record], stops: list[dt.datetime], restored: Restored
    ) -> list[Record]:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[self._account_id][self._region]
        machines = {machine.arn: machine for machine in backend.state_machines}
        starts: dict[str, Record] = {}
        events: dict[str, dict[int, dict[str, Any]]] = {}
        stop_dates: dict[str, Record] = {}
        for record in records:
            if record.get("kind") == "execution":
                starts[record["arn"]] = record
                events.setdefault(record["arn"], {})
            elif record.get("kind") == "event" and record["arn"] in events:
                event = record["event"]
                events[record["arn"]][int(event["id"])] = event
            elif record.get("kind") == "stop_date":
                stop_dates[record["arn"]] = record
        kept: list[Record] = []
        missing: dict[str, int] = {}
        for arn, start in sorted(starts.items(), key=lambda item: item[1]["start_date"]):
            history = [events[arn][number] for number in sorted(events[arn])]
            machine = machines.get(start["state_machine_arn"])
            if machine is None:
                kept += [start, *({"kind": "event", "arn": arn, "event": e} for e in history)]
                missing[start["state_machine_arn"]] = missing.get(start["state_machine_arn"], 0) + 1
                continue
            started = _parse_time(start["start_date"]) or dt.datetime.now(dt.timezone.utc)
            finished = bool(history) and history[-1]["type"] in TERMINAL_EVENTS
            ended = stop_dates.get(arn) if finished else None
            if not finished:
                history.append(_aborted_event(history, started, stops))
                restored.unfinished_executions += 1
            execution = RestoredExecution(
                history,
                name=start["name"],
                sm_type=machine.sm_type,
                role_arn=start["role_arn"],
                exec_arn=arn,
                account_id=self._account_id,
                region_name=self._region,
                state_machine=machine,
                start_date=started,
                cloud_watch_logging_session=None,
                activity_store={},
                input_data=start["input"] or "{}",
            )
            last = history[-1]
            execution.exec_status = ExecutionStatus(TERMINAL_EVENTS[last["type"]])
            # The execution's own stop date when it was recorded (a moment after its last event).
            execution.stop_date = _parse_time((ended or {}).get("at") or last["timestamp"])
            details = last.get(_DETAILS[last["type"]]) or {}
            if execution.exec_status == ExecutionStatus.SUCCEEDED:
                execution.output = details.get("output")
            execution.error = details.get("error")
            execution.cause = details.get("cause")
            machine.executions.append(execution)
            kept += [start, *({"kind": "event", "arn": arn, "event": e} for e in history)]
            kept += [ended] if ended else []
            restored.executions += 1
        restored.kept += [
            f"kept {count} executions of {name} for later: no such state machine is deployed now"
            for name, count in missing.items()
        ]
        return kept

    def _restore_crawls(
        self, records: list[Record], stops: list[dt.datetime], restored: Restored
    ) -> list[Record]:
        backend = glue_models.glue_backends[self._account_id][self._region]
        latest: dict[str, Record] = {}
        for record in records:
            if record.get("kind") == "crawl":
                latest[record["id"]] = record
        kept = []
        for record in sorted(latest.values(), key=lambda r: r["start"] or ""):
            crawler = backend.crawlers.get(record["crawler"])
            if crawler is None:
                kept.append(record)
                restored.kept.append(
                    f"kept crawl {record['id']} for later: no crawler {record['crawler']} now"
                )
                continue
            crawl = glue_models.FakeCrawl(record["crawler"])
            crawl.crawl_id = crawl.message_prefix = record["id"]
            crawl.start_time = _parse_time(record["start"]) or crawl.start_time
            crawl.end_time = _parse_time(record["end"])
            crawl.status = record["status"]
            crawl.error_message = record.get("error")
            if record.get("event_mode"):
                crawl.event_mode = record["event_mode"]
            if record["status"] in _UNFINISHED_CRAWL:
                crawl.status = "STOPPED"
                crawl.error_message = STOPPED_MESSAGE.format("crawl")
                crawl.end_time = _naive(_stopped_after(_aware(crawl.start_time), stops))
                record = {
                    **record,
                    "status": crawl.status,
                    "error": crawl.error_message,
                    "end": _time(crawl.end_time),
                }
            crawl.__dict__[BEFORE_RESTART] = True
            crawler.crawls.append(crawl)
            kept.append(record)
            restored.crawls += 1
        return kept

    def _restore_job_runs(
        self, records: list[Record], stops: list[dt.datetime], restored: Restored
    ) -> list[Record]:
        backend = glue_models.glue_backends[self._account_id][self._region]
        latest: dict[str, Record] = {}
        for record in records:
            if record.get("kind") == "job_run":
                latest[record["id"]] = record
        kept = []
        for record in sorted(latest.values(), key=lambda r: r["started"] or ""):
            job = backend.jobs.get(record["job"])
            if job is None:
                kept.append(record)
                restored.kept.append(
                    f"kept Glue job run {record['id']} for later: no job {record['job']} now"
                )
                continue
            run = glue_models.FakeJobRun(job_name=record["job"], arguments=record["arguments"])
            run.job_run_id = record["id"]
            run.timeout = record.get("timeout")
            run.started_on = _parse_time(record["started"]) or run.started_on
            run.completed_on = _parse_time(record["completed"]) or run.started_on
            run.modified_on = run.completed_on
            run.status = record["status"]
            run.error_message = record.get("error")
            run.execution_seconds = record.get("seconds") or 0
            if record["status"] in _UNFINISHED_RUN:
                run.status = "FAILED"
                run.error_message = STOPPED_MESSAGE.format("job run")
                run.completed_on = _naive(_stopped_after(_aware(run.started_on), stops))
                run.modified_on = run.completed_on
                record = {
                    **record,
                    "status": run.status,
                    "error": run.error_message,
                    "completed": _time(run.completed_on),
                }
            job.job_runs.append(run)
            kept.append(record)
            restored.job_runs += 1
        return kept

    def _compact(self, kept: list[Record]) -> None:
        """Write the replayed state as the new journal; delete bodies nothing refers to."""
        fresh = self._journal_path.with_suffix(".fresh")
        with fresh.open("w", encoding="utf-8") as out:
            for record in kept:
                out.write(json.dumps(record, default=_json_default) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(fresh, self._journal_path)
        used = {
            version["body"]
            for record in kept
            if record.get("kind") == "s3"
            for version in record["versions"]
            if version.get("body")
        }
        for body in self._bodies.iterdir():
            if body.name not in used:
                body.unlink(missing_ok=True)


def _stopped_after(started: dt.datetime, stops: list[dt.datetime]) -> dt.datetime:
    """When something that started at ``started`` and never ended was cut off: the first
    clean stop recorded after it began (a killed stack records none: its start then)."""
    return next((stop for stop in stops if stop >= started), started)


def _aborted_event(
    history: list[dict[str, Any]], started: dt.datetime, stops: list[dt.datetime]
) -> dict[str, Any]:
    """The event that closes the history of an execution the stopping stack cut off."""
    last = history[-1] if history else None
    since = _parse_time(last["timestamp"]) if last else None
    at = _stopped_after(_aware(since or started), stops)
    last_id = int(last["id"]) if last else 0
    return {
        "id": last_id + 1,
        "previousEventId": last_id,
        "type": "ExecutionAborted",
        "timestamp": iso_8601_datetime_with_milliseconds(at),
        "executionAbortedEventDetails": {"error": STOPPED_ERROR, "cause": STOPPED_CAUSE},
    }
