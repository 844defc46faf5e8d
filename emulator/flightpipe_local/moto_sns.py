"""SNS patch: every message published to a topic is captured and shown.

The pipeline reports success and failure by SNS (email on AWS). Locally there is
nobody to mail, so ``Topic.publish`` is wrapped: moto delivers the message to the
topic's subscriptions as before, and :class:`NoticeBoard` keeps a copy (topic,
subject, message) for the CLI to print and tests to assert on.

An SQS subscription receives the message (in SNS's envelope, or raw with
``RawMessageDelivery``) only when the queue's policy lets SNS send it for the topic, as
on AWS: SNS delivers as the service principal ``sns.amazonaws.com`` with the topic in
``aws:SourceArn`` ("Subscribing an Amazon SQS queue to an Amazon SNS topic",
https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html); moto
delivers whatever the policy says.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from moto.sns import models as sns_models

from flightpipe_local._patching import PatchSet
from flightpipe_local.iam.enforcement import resource_policies
from flightpipe_local.iam.policy import Principal, Request, evaluate

SEAM_OWNER = sns_models.Topic
SEAM_NAME = "publish"
DELIVERY_OWNER = sns_models.Subscription
DELIVERY_NAME = "publish"
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """One published message."""

    topic_arn: str
    subject: Optional[str]
    message: str
    published_at: float

    def body(self) -> Any:
        """The message parsed as JSON when it is JSON, else the text."""
        try:
            return json.loads(self.message)
        except ValueError:
            return self.message


class NoticeBoard:
    """Messages published to SNS topics, in order."""

    def __init__(self, on_notice: Optional[Callable[[Notice], None]] = None) -> None:
        self._notices: list[Notice] = []
        self._lock = threading.Lock()
        self.on_notice = on_notice
        # Told of every notice as it is published (the stack's memory records them).
        self.recorder: Optional[Callable[[Notice], None]] = None

    def add(self, notice: Notice) -> None:
        with self._lock:
            self._notices.append(notice)
        if self.recorder is not None:
            self.recorder(notice)
        if self.on_notice is not None:
            self.on_notice(notice)

    def restore(self, notices: list[Notice]) -> None:
        """Put back the notices an earlier stack published (shown once already: not again)."""
        with self._lock:
            self._notices[:0] = notices

    def notices(self) -> list[Notice]:
        with self._lock:
            return list(self._notices)


def install(patches: PatchSet, board: NoticeBoard) -> None:
    """Capture every message published to a topic on ``board``."""
    original = SEAM_OWNER.__dict__[SEAM_NAME]

    def publish(
        self: Any, message: str, subject: Optional[str] = None, *args: Any, **kwargs: Any
    ) -> str:
        message_id = original(self, message, subject, *args, **kwargs)
        board.add(Notice(self.arn, subject, message, time.time()))
        return message_id

    patches.replace(SEAM_OWNER, SEAM_NAME, publish)
    original_delivery = DELIVERY_OWNER.__dict__[DELIVERY_NAME]

    def deliver(self: Any, *args: Any, **kwargs: Any) -> None:
        if self.protocol == "sqs" and not sns_may_send(self.endpoint, self.topic.arn):
            LOG.warning("SNS may not send to %s (its queue policy): message dropped", self.endpoint)
            return
        original_delivery(self, *args, **kwargs)

    patches.replace(DELIVERY_OWNER, DELIVERY_NAME, deliver)


def sns_may_send(queue_arn: str, topic_arn: str) -> bool:
    """Whether the queue's policy lets SNS send it the topic's messages."""
    account = topic_arn.split(":")[4]
    request = Request(
        action="sqs:SendMessage",
        resource=queue_arn,
        principal=Principal.service("sns.amazonaws.com"),
        context={
            "aws:SourceArn": topic_arn,
            "aws:SourceAccount": account,
            "aws:SecureTransport": True,
        },
    )
    return evaluate(request, (), resource_policies(queue_arn)).allowed
