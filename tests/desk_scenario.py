"""A newsroom desk in every state, for the tests that prove nothing unpublished reaches a reader
(tests/test_desk_never_public.py).

Every piece of text a submission carries (its body before and after each revision, the editor's
note, its photo's alt text) is a unique marker, and so are its photo's storage stem and its
client_id: a test searches whole public answers for each of them. A published submission's
final text, alt text and photo are then expected exactly once, in a post made at the moment it
was published.

The scenario is a list of steps, each either a desk-only change (which must leave every public
read as it was) or a publication (which appends exactly one post.created): the static tests run
them all, the live websocket test runs them one by one with a reader connected.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from liveblog import services
from liveblog.models import Blog, Membership, Submission

SLUG = "desk"


def photo_file(colour: str) -> SimpleUploadedFile:
    """A small JPEG: two variants (320, 400), cheap to process."""
    out = io.BytesIO()
    Image.new("RGB", (400, 300), colour).save(out, "JPEG")
    return SimpleUploadedFile("photo.jpg", out.getvalue(), content_type="image/jpeg")


def photo_stem(data: dict) -> str:
    """The random part of a photo's storage names (every variant shares it): what any URL of
    that photo contains."""
    src = data["photo"]["src"]
    return src.rsplit("/", 1)[1].rsplit("-", 1)[0]


@dataclass(frozen=True)
class Published:
    """A submission that became a post: what every public read must show exactly once."""

    label: str
    text: str  # a marker in its published body
    post_id: int
    seq: int  # the public log's head right after it was published
    created_at: str  # the post's created_at as the wire carries it
    # Its photo's alt text and storage stem, if it had one.
    alt: str | None = None
    stem: str | None = None


@dataclass
class Step:
    name: str
    run: Callable[[], object]
    public: bool  # True: one post.created; False: a desk-only change


@dataclass
class DeskScenario:
    blog: Blog
    owner: object
    editor: object
    contributor: object
    # label -> a string that must appear in no public answer.
    hidden: dict[str, str] = field(default_factory=dict)
    # In the order they were published (direct posts included: the feed's whole content).
    published: list[Published] = field(default_factory=list)
    submissions: dict[str, int] = field(default_factory=dict)

    # --- Writing --------------------------------------------------------------------------------

    def submit(self, label: str, *, photo: str | None = None, author=None, **flags: bool) -> dict:
        """A contributor's post: a submission on the desk (no seq). Pinned or a key event, it
        must still not reach the pinned posts or the key events a reader sees."""
        body = f"Zq{label}Body"
        fields: dict = dict(flags)
        if photo:
            fields.update(photo=photo_file(photo), photo_alt=f"Zq{label}Alt")
        written = services.post_create(
            actor=author or self.contributor, blog_id=self.blog.pk, client_id=uuid.uuid4(),
            body=body, **fields,
        )
        assert written.desk and written.seq is None, written
        data = written.data
        self.submissions[label] = data["id"]
        self.hide(label, data, body)
        return data

    def hide(self, label: str, data: dict, body: str) -> None:
        self.hidden[f"{label} body"] = body
        self.hidden[f"{label} client_id"] = data["client_id"]
        if data["photo"]:
            self.hidden[f"{label} alt"] = data["photo"]["alt"]
            self.hidden[f"{label} photo"] = photo_stem(data)

    def unhide(self, label: str) -> None:
        """Published: its final text, photo and client_id are public from now on."""
        for key in [key for key in self.hidden if key.startswith(f"{label} ")]:
            if not key.endswith((" draft", " note")):
                del self.hidden[key]

    def head(self) -> int:
        return Blog.objects.values_list("head", flat=True).get(pk=self.blog.pk)

    def publish_direct(self, label: str) -> None:
        """An editor's post, published at once."""
        before = timezone.now()
        written = services.post_create(
            actor=self.editor, blog_id=self.blog.pk, client_id=uuid.uuid4(),
            body=f"Zq{label}Public",
        )
        self.record(label, f"Zq{label}Public", written, before)

    def record(self, label: str, text: str, written: services.Written, before: datetime) -> None:
        """A publication: its seq is the head at that moment, its time the moment itself."""
        after = timezone.now()
        assert written.created and not written.desk, written
        assert written.seq == self.head(), (written.seq, self.head())
        if self.published:
            assert written.seq > self.published[-1].seq
            assert written.data["id"] > self.published[-1].post_id  # the top of the feed
        created = datetime.fromisoformat(written.data["created_at"])
        # The wire truncates to milliseconds.
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= created <= after
        photo = written.data["photo"]
        self.published.append(Published(
            label=label, text=text, post_id=written.data["id"], seq=written.seq,
            created_at=written.data["created_at"],
            alt=photo["alt"] if photo else None, stem=photo_stem(written.data) if photo else None,
        ))

    # --- The steps ------------------------------------------------------------------------------

    def steps(self) -> list[Step]:
        later = timezone.now() + timedelta(days=1)
        soon = timezone.now() + timedelta(minutes=10)
        pub = services

        def desk(name: str, run: Callable[[], object]) -> Step:
            return Step(name, run, public=False)

        def public(name: str, run: Callable[[], object]) -> Step:
            return Step(name, run, public=True)

        def ids(label: str) -> dict:
            return {"blog_id": self.blog.pk, "submission_id": self.submissions[label]}

        def return_with_note() -> None:
            self.hidden["Returned note"] = "ZqReturnedNote"
            pub.submission_return(actor=self.editor, note="Source? ZqReturnedNote",
                                  **ids("Returned"))

        def revise() -> None:
            self.hidden["Revised draft"] = self.hidden.pop("Revised body")
            self.hidden["Revised body"] = "ZqRevisedNewBody"
            pub.submission_revise(actor=self.contributor, body="ZqRevisedNewBody",
                                  **ids("Revised"))

        def schedule_by_editor() -> None:
            body = "ZqScheduledBody"
            written = pub.post_create(
                actor=self.editor, blog_id=self.blog.pk, client_id=uuid.uuid4(), body=body,
                photo=photo_file("green"), photo_alt="ZqScheduledAlt", publish_at=later,
                pinned=True, key_event=True,
            )
            assert written.desk and written.data["state"] == "scheduled", written
            self.submissions["Scheduled"] = written.data["id"]
            self.hide("Scheduled", written.data, body)

        def schedule_edited() -> None:
            self.hidden["Edited draft"] = self.hidden.pop("Edited body")
            self.hidden["Edited body"] = "ZqEditedScheduledBody"
            written = pub.submission_publish(
                actor=self.editor, body="ZqEditedScheduledBody", publish_at=later,
                **ids("Edited"),
            )
            assert written.data["state"] == "scheduled", written

        def schedule_due() -> None:
            written = pub.submission_publish(actor=self.editor, publish_at=soon, **ids("Due"))
            assert written.data["state"] == "scheduled", written

        def publish_edited_now() -> None:
            self.hidden["Published draft"] = self.hidden.pop("Published body")
            before = timezone.now()
            written = pub.submission_publish(
                actor=self.editor, body="ZqPublishedFinal", key_event=True, **ids("Published")
            )
            self.unhide("Published")
            self.record("Published", "ZqPublishedFinal", written, before)

        def publish_due() -> None:
            before = timezone.now()
            [written] = pub.submissions_publish_due(now=soon + timedelta(minutes=1))
            self.unhide("Due")
            self.record("Due", "ZqDueBody", written, before)

        return [
            public("an editor publishes", lambda: self.publish_direct("Opener")),
            desk("a contributor submits, with a photo",
                 lambda: self.submit("Waiting", photo="red", pinned=True, key_event=True)),
            desk("a contributor submits a key event",
                 lambda: self.submit("Returned", key_event=True)),
            desk("an editor returns it with a note", return_with_note),
            desk("a contributor submits", lambda: self.submit("Revised")),
            desk("the contributor revises it", revise),
            desk("a contributor submits, with a photo",
                 lambda: self.submit("Withdrawn", photo="blue")),
            desk("the contributor withdraws it", lambda: pub.submission_withdraw(
                actor=self.contributor, **ids("Withdrawn"))),
            desk("an editor schedules a post a day ahead, with a photo", schedule_by_editor),
            desk("a contributor submits", lambda: self.submit("Edited")),
            desk("an editor edits it and schedules it a day ahead", schedule_edited),
            desk("a contributor submits", lambda: self.submit("Due")),
            desk("an editor schedules it ten minutes ahead", schedule_due),
            desk("a contributor submits, with a photo",
                 lambda: self.submit("Published", photo="yellow")),
            public("an editor publishes meanwhile", lambda: self.publish_direct("Meanwhile")),
            public("an editor edits the submission and publishes it", publish_edited_now),
            public("the scheduler publishes the one that is due", publish_due),
        ]

    def run_all(self) -> DeskScenario:
        for step in self.steps():
            step.run()
        self.check_states()
        return self

    def check_states(self) -> None:
        """The desk holds what the scenario says (so that the searches search for something)."""
        states = dict(Submission.objects.filter(blog=self.blog).values_list("id", "state"))
        expected = {
            "Waiting": "submitted", "Returned": "returned", "Revised": "submitted",
            "Withdrawn": "withdrawn", "Scheduled": "scheduled", "Edited": "scheduled",
            "Published": "published", "Due": "published",
        }
        assert {label: states[self.submissions[label]] for label in expected} == expected

    def more_desk_activity(self) -> None:
        """Desk-only changes after everything else: submitted, returned, withdrawn, scheduled,
        revised. Nothing a reader sees may change (not even a feed's version)."""
        self.submit("Late")
        self.submit("LateReturned")
        self.hidden["LateReturned note"] = "ZqLateNote"
        services.submission_return(actor=self.editor, blog_id=self.blog.pk,
                                   submission_id=self.submissions["LateReturned"],
                                   note="ZqLateNote")
        self.submit("LateWithdrawn", photo="purple")
        services.submission_withdraw(actor=self.contributor, blog_id=self.blog.pk,
                                     submission_id=self.submissions["LateWithdrawn"])
        services.submission_publish(
            actor=self.editor, blog_id=self.blog.pk, submission_id=self.submissions["Late"],
            publish_at=timezone.now() + timedelta(hours=3),
        )
        self.hidden["Late draft"] = self.hidden.pop("Late body")
        self.hidden["Late body"] = "ZqLateRevised"
        services.submission_revise(actor=self.editor, blog_id=self.blog.pk,
                                   submission_id=self.submissions["Late"], body="ZqLateRevised")


def make_scenario(owner) -> DeskScenario:
    """The blog (owned by `owner`), an editor and a contributor; nothing written yet."""
    users = get_user_model().objects
    editor = users.create_user("edna", first_name="Edna", last_name="Editor")
    contributor = users.create_user("carl", first_name="Carl", last_name="Contributor")
    blog = services.blog_create(actor=owner, slug=SLUG, title="Election night")
    blog.authors.add(editor)
    Membership.objects.create(blog=blog, user=contributor, role=Membership.Role.CONTRIBUTOR)
    return DeskScenario(blog=blog, owner=owner, editor=editor, contributor=contributor)
