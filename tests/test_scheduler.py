"""Scheduled posts in one process: the service publishes each due submission once, however many
callers race for it; the scheduler thread keeps going through database errors; it is off in
the pytest process; `manage.py liveblog_publish_due`. (Real server processes:
tests/test_scheduler_servers.py.)"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.utils import timezone

from devstack.common import wait_until
from liveblog import scheduler, services
from liveblog.models import Event, Post, Submission

pytestmark = pytest.mark.django_db(transaction=True)


def schedule(blog, author, count: int = 1, *, ahead: timedelta = timedelta(minutes=5)):
    """Scheduled submissions (an editor's post with a future publish_at)."""
    publish_at = timezone.now() + ahead
    return [
        services.post_create(actor=author, blog_id=blog.pk, client_id=uuid.uuid4(),
                             body=f"embargoed {number}", publish_at=publish_at)
        for number in range(count)
    ], publish_at


def public_log(blog) -> list[tuple[int, str]]:
    return list(Event.objects.filter(blog=blog).values_list("seq", "kind"))


def test_a_due_submission_is_published_once_and_not_before_its_time(blog, author):
    (written,), publish_at = schedule(blog, author)
    assert written.desk and written.data["state"] == "scheduled"
    assert services.submissions_publish_due(now=publish_at - timedelta(seconds=1)) == []
    assert public_log(blog) == []
    (published,) = services.submissions_publish_due(now=publish_at)
    assert published.seq == 1 and published.data["body"] == "embargoed 0"
    submission = Submission.objects.get(pk=written.data["id"])
    assert (submission.state, submission.published_seq) == ("published", 1)
    assert submission.post.author == author
    assert list(submission.actions.values_list("action", "actor")) == [
        ("submitted", author.pk), ("scheduled", author.pk), ("published", None),
    ]
    assert services.submissions_publish_due(now=publish_at + timedelta(hours=1)) == []
    assert public_log(blog) == [(1, "post.created")]


@pytest.mark.parametrize("callers", [2, 4])
def test_callers_racing_in_threads_publish_each_due_submission_once(blog, author, callers):
    written, publish_at = schedule(blog, author, count=6)
    later = publish_at + timedelta(seconds=1)
    barrier = threading.Barrier(callers, timeout=30)
    results: list[list[services.Written]] = []
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            barrier.wait()
            results.append(services.submissions_publish_due(now=later))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    published = [item for result in results for item in result]
    assert sorted(item.seq for item in published) == list(range(1, 7))
    assert public_log(blog) == [(seq, "post.created") for seq in range(1, 7)]
    assert Post.objects.filter(blog=blog).count() == 6
    assert set(Submission.objects.values_list("state", flat=True)) == {"published"}
    assert sorted(Post.objects.values_list("client_id", flat=True)) == sorted(
        uuid.UUID(item.data["client_id"]) for item in written
    )


def test_the_scheduler_thread_publishes_due_posts_and_survives_database_errors(
    blog, author, caplog
):
    (written,), _ = schedule(blog, author, ahead=timedelta(milliseconds=300))
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) <= 2:
            raise OperationalError("the database went away")
        return len(services.submissions_publish_due())

    worker = scheduler.Scheduler(interval=0.05, publish=flaky).start()
    try:
        wait_until(
            lambda: Submission.objects.filter(pk=written.data["id"], state="published").exists(),
            timeout=10, message="the scheduler thread to publish the submission",
        )
        assert worker.running
    finally:
        worker.stop()
    assert not worker.running
    assert public_log(blog) == [(1, "post.created")]
    assert "could not publish due posts" in caplog.text
    assert "publishing works again" in caplog.text


def test_a_tick_never_raises(caplog):
    def broken() -> int:
        raise RuntimeError("a bug")

    worker = scheduler.Scheduler(interval=1, publish=broken)
    assert worker.tick() == 0
    assert "a bug" in caplog.text


def test_the_pytest_process_runs_no_scheduler(settings):
    import project.asgi  # noqa: F401 - importing the application starts one in a server

    assert settings.LIVEBLOG_SCHEDULER is False
    assert scheduler.start_in_server() is None
    assert scheduler.server_scheduler() is None
    assert not any(thread.name == "liveblog-scheduler" for thread in threading.enumerate())


def test_the_command_publishes_what_is_due(blog, author, monkeypatch):
    (written,), publish_at = schedule(blog, author)
    out = StringIO()
    call_command("liveblog_publish_due", stdout=out)
    assert "published 0" in out.getvalue()
    monkeypatch.setattr(timezone, "now", lambda: publish_at + timedelta(seconds=1))
    out = StringIO()
    call_command("liveblog_publish_due", stdout=out)
    assert "published 1" in out.getvalue()
    assert Submission.objects.get(pk=written.data["id"]).state == "published"


def test_one_submission_that_cannot_be_published_does_not_hold_up_the_others(
    blog, author, monkeypatch, caplog
):
    """A bug or a bad row in one scheduled submission: it is logged and the others still go
    out (it would otherwise come first in every run, for ever)."""
    written, publish_at = schedule(blog, author, count=3)
    poisoned = written[0].data["id"]
    real_publish_now = services._submission_publish_now

    def failing_for_one(locked, submission, actor):
        if submission.pk == poisoned:
            raise ValueError("a bad row")
        return real_publish_now(locked, submission, actor)

    monkeypatch.setattr(services, "_submission_publish_now", failing_for_one)
    published = services.submissions_publish_due(now=publish_at)
    assert sorted(item.data["body"] for item in published) == ["embargoed 1", "embargoed 2"]
    assert Submission.objects.get(pk=poisoned).state == "scheduled"
    assert f"could not publish scheduled submission {poisoned}" in caplog.text
    assert public_log(blog) == [(1, "post.created"), (2, "post.created")]


def test_a_database_failure_is_raised_to_the_scheduler(blog, author, monkeypatch):
    _, publish_at = schedule(blog, author, count=2)

    def gone(locked, submission, actor):
        raise OperationalError("server closed the connection")

    monkeypatch.setattr(services, "_submission_publish_now", gone)
    with pytest.raises(OperationalError):
        services.submissions_publish_due(now=publish_at)
