"""``calc.run_job`` messages as Celery would put them on the Redis broker, made per job cheaply.

A submit used to write the job's record and then publish its task with ``apply_async``: two
round trips, and Celery's and kombu's own code cost about 0.6 ms of CPU a message (options,
routing, producer pool, retry wrappers), a quarter of what a submit cost the API. Instead,
Celery's own ``apply_async`` renders one message per process, for a placeholder job id, into a
channel that keeps it rather than sending it; each job's message is that one with its id and a
fresh delivery tag put in, and the job store pushes it in the same script that writes the job's
record (``JobStore.create``): one round trip, and never a record without its task or a task
without its record. ``tests/workers/test_task_messages.py`` checks the made message against one
Celery sends itself, field by field: what is kept is what kombu's Redis channel would push
(its ``_put``, the one step replaced here; kombu is pinned), and a change there fails that test.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass

from celery import Celery
from kombu.utils.json import dumps

PLACEHOLDER_ID = "00000000-0000-4000-8000-00000000cafe"
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class _Template:
    queue_key: str
    message: str  # the envelope's JSON, its body base64-encoded
    encoded_body: str  # that body as it stands in the envelope
    body: str  # the task's body JSON (args, kwargs, embed) before encoding
    delivery_tag: str


class RunJobMessages:
    """Makes ``calc.run_job`` messages for job ids; the template is rendered on first use."""

    def __init__(self, app: Celery):
        self.app = app
        self._template: _Template | None = None
        self._lock = threading.Lock()

    def for_job(self, job_id: str) -> tuple[str, str] | None:
        """The queue's Redis list and the message's JSON for ``job_id``; None (the caller
        then publishes with ``apply_async``) for an id that is not a UUID in lower case, or
        inside a running task (a scheduled run), whose message Celery links to that task."""
        if not _JOB_ID.fullmatch(job_id) or self.app.current_worker_task is not None:
            return None
        template = self.prepare()
        body = base64.b64encode(template.body.replace(PLACEHOLDER_ID, job_id).encode()).decode()
        message = (
            template.message.replace(template.encoded_body, body)
            .replace(PLACEHOLDER_ID, job_id)
            .replace(template.delivery_tag, str(uuid.uuid4()))
        )
        return template.queue_key, message

    def prepare(self) -> _Template:
        """The template, rendered on first use (which needs Redis)."""
        if self._template is not None:
            return self._template
        with self._lock:
            if self._template is None:
                self._template = render_template(self.app)
            return self._template


def render_template(app: Celery) -> _Template:
    """Celery's own message for ``run_job(PLACEHOLDER_ID)``, kept instead of sent."""
    kept: list[tuple[str, str]] = []
    with app.connection_for_write() as connection:
        channel = connection.channel()
        try:

            def keep(queue: str, message: dict, **_: object) -> None:
                priority = channel._get_message_priority(message, reverse=False)
                kept.append((channel._q_for_pri(queue, priority), dumps(message)))

            channel._put = keep  # the one step that would send it
            with app.amqp.Producer(channel) as producer:
                publish_run_job(PLACEHOLDER_ID, producer=producer)
        finally:
            channel.close()
    [(queue_key, message)] = kept
    envelope = json.loads(message)
    body = base64.b64decode(envelope["body"]).decode()
    if envelope["properties"].get("body_encoding") != "base64" or PLACEHOLDER_ID not in body:
        raise RuntimeError(f"unexpected shape of a Celery task message: {message[:200]}")
    tag = envelope["properties"]["delivery_tag"]
    return _Template(queue_key, message, envelope["body"], body, tag)


def publish_run_job(job_id: str, **options: object) -> None:
    """``calc.run_job`` for ``job_id`` sent by Celery itself."""
    from workers.tasks import run_job

    # The arguments' repr given: Celery's saferepr of them cost 0.4 of the 1 ms a publish took.
    run_job.apply_async(
        args=(job_id,), task_id=job_id, argsrepr=repr((job_id,)), kwargsrepr="{}", **options
    )
