"""Admin: managing blogs, their people and posts, and reading the desk. Every visible change goes
through the services, so an admin edit is numbered, logged and broadcast exactly like one from the
API; roles are set through services.member_set/member_remove (owner and staff only), and the desk's
submissions and every post's history are read-only here."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from . import protocol, services
from .errors import LiveblogError
from .models import (
    Blog,
    Event,
    Membership,
    Photo,
    Post,
    PushSubscription,
    Submission,
    SubmissionAction,
)
from .permissions import can_post


class ServiceErrorsAsMessages:
    """A refused write shows as an admin message instead of a server error."""

    def changeform_view(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except LiveblogError as error:
            self.message_user(request, error.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return super().delete_view(request, *args, **kwargs)
        except LiveblogError as error:
            self.message_user(request, error.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


def _reload(obj, pk: int) -> None:
    """Point the admin's unsaved instance at the row a service wrote."""
    obj.pk = pk
    obj.refresh_from_db()
    obj._state.adding = False


class EmbedOriginsField(forms.CharField):
    """The origins allowed to embed a blog, one per line, cleaned as the API cleans them."""

    widget = forms.Textarea(attrs={"rows": 3, "placeholder": "https://news.example"})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def clean(self, value) -> list[str]:
        lines = [line.strip() for line in (super().clean(value) or "").splitlines()]
        try:
            return services.clean_embed_origins([line for line in lines if line])
        except LiveblogError as error:
            raise forms.ValidationError(error.detail) from None


class BlogForm(forms.ModelForm):
    embed_origins = EmbedOriginsField(
        required=False,
        help_text="Sites allowed to show this blog in a frame (the embed), one origin per line, "
                  "e.g. https://news.example. Empty: no site.",
    )

    class Meta:
        model = Blog
        fields = ["slug", "title", "description", "status", "owner", "embed_origins"]


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "role"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:  # a row is one person's role: change the role, or delete the row
            self.fields["user"].disabled = True


class MembershipInline(admin.TabularInline):
    """Who writes for the blog and in which role. Saved by BlogAdmin.save_formset through the
    services (owner and staff only), never by the formset itself."""

    model = Membership
    form = MembershipForm
    fk_name = "blog"
    extra = 0
    fields = ["user", "role", "added_by", "updated_at"]
    readonly_fields = ["added_by", "updated_at"]
    verbose_name = "person who writes for the blog"
    verbose_name_plural = ("People who write for the blog (the owner publishes whatever its "
                           "row says; editors publish; contributors submit to the desk)")


@admin.register(Blog)
class BlogAdmin(ServiceErrorsAsMessages, admin.ModelAdmin):
    form = BlogForm
    inlines = [MembershipInline]
    list_display = ["title", "slug", "status", "head", "owner", "created_at"]
    list_filter = ["status"]
    search_fields = ["title", "slug"]
    readonly_fields = ["epoch", "head", "created_at"]

    def get_fields(self, request: HttpRequest, obj: Blog | None = None) -> list[str]:
        if obj is None:  # the creator becomes the owner
            return ["slug", "title", "description"]
        return ["slug", "title", "description", "status", "owner", "embed_origins",
                *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Blog | None = None) -> list[str]:
        return [*self.readonly_fields, "slug"] if obj else []

    def get_inlines(self, request: HttpRequest, obj: Blog | None = None) -> list:
        # A new blog's only person is its creator, the owner; others are added once it exists.
        return self.inlines if obj else []

    def save_model(self, request: HttpRequest, obj: Blog, form, change: bool) -> None:
        if not change:
            blog = services.blog_create(
                actor=request.user, slug=obj.slug, title=obj.title, description=obj.description
            )
            _reload(obj, blog.pk)
            return
        services.blog_update(
            actor=request.user,
            blog_id=obj.pk,
            title=obj.title,
            description=obj.description,
            status=obj.status,
            owner=obj.owner,
            embed_origins=form.cleaned_data["embed_origins"],
        )
        obj.refresh_from_db()

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        """Roles change only through the services, as from the API: a refused one (not the
        owner or staff, the owner's own row, a disabled account) raises, and
        ServiceErrorsAsMessages shows it (the whole save is rolled back with it)."""
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        blog_id = form.instance.pk
        # What the admin's history entry lists (construct_change_message reads these).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for row in formset.deleted_forms:
            if row.instance.pk:
                services.member_remove(actor=request.user, blog_id=blog_id, user=row.instance.user)
                formset.deleted_objects.append(row.instance)
        for row in formset.forms:
            if row in formset.deleted_forms or not row.has_changed() or not row.cleaned_data:
                continue
            user = row.cleaned_data.get("user") or row.instance.user
            services.member_set(actor=request.user, blog_id=blog_id, user=user,
                                role=row.cleaned_data["role"])
            saved = Membership.objects.get(blog_id=blog_id, user=user)
            if row.instance.pk:
                formset.changed_objects.append((saved, row.changed_data))
            else:
                formset.new_objects.append(saved)


class PostAdminForm(forms.ModelForm):
    request: HttpRequest | None = None

    class Meta:
        model = Post
        fields = ["blog", "body", "pinned", "key_event"]

    def clean(self) -> dict:
        data = super().clean()
        blog = data.get("blog") or (self.instance.blog if self.instance.pk else None)
        if blog is not None and not can_post(self.request.user, blog):
            raise forms.ValidationError("You are not an author of this blog.")
        body = data.get("body")
        if body is not None:
            try:
                services.validate_body(body, allow_empty=self.instance.photo_id is not None)
            except LiveblogError as error:
                self.add_error("body", error.detail)
        return data


def _photo_preview(photo: Photo | None) -> str:
    """The photo as readers see it, its alt text and every stored variant (read-only: photos
    come from the author's phone through the API)."""
    if photo is None:
        return "—"
    variants = format_html_join(
        ", ", '<a href="{}">{} × {}</a>',
        ((default_storage.url(v["name"]), v["width"], v["height"]) for v in photo.variants),
    )
    return format_html(
        '<img src="{}" alt="{}" width="320"><br>alt: {}<br>variants: {}',
        protocol.photo_json(photo)["src"], photo.alt, photo.alt, variants,
    )


class ReadOnlyInline(admin.TabularInline):
    """History: shown, never added to, changed or deleted by hand."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Post)
class PostAdmin(ServiceErrorsAsMessages, admin.ModelAdmin):
    form = PostAdminForm
    list_display = ["__str__", "blog", "author", "created_at", "pinned", "key_event", "is_deleted"]
    list_filter = ["blog", "pinned", "key_event"]
    search_fields = ["body"]
    readonly_fields = [
        "client_id", "author", "html", "photo_preview", "created_at", "edited_at", "deleted_at",
        "submission_link", "history",
    ]
    list_select_related = ["blog", "author"]

    @admin.display(boolean=True, description="deleted")
    def is_deleted(self, post: Post) -> bool:
        return post.deleted_at is not None

    @admin.display(description="photo")
    def photo_preview(self, post: Post) -> str:
        return _photo_preview(post.photo)

    @admin.display(description="who did what")
    def history(self, post: Post) -> str:
        """The post's events in the public log with the person behind each (the actor is
        kept for this history, never sent to readers). A table, not an inline: an inline's
        formset would have to come back with every save of the post."""
        rows = (Event.objects.filter(post=post).select_related("actor").order_by("seq")
                .only("seq", "kind", "created_at", "actor__username"))
        if not rows:
            return "—"
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((row.seq, row.kind, row.actor.get_username() if row.actor else "—",
              f"{row.created_at:%Y-%m-%d %H:%M:%S}") for row in rows),
        )
        return format_html(
            "<table><thead><tr><th>seq</th><th>what</th><th>who</th><th>when (UTC)</th></tr>"
            "</thead><tbody>{}</tbody></table>", body,
        )

    @admin.display(description="submitted to the desk as")
    def submission_link(self, post: Post) -> str:
        """The submission this post was published from (a contributor's, or a scheduled
        post), whose history says who wrote, revised and published it."""
        submission = Submission.objects.filter(post=post).only("pk").first()
        if submission is None:
            return "— (published directly)"
        url = reverse("admin:liveblog_submission_change", args=[submission.pk])
        return format_html('<a href="{}">submission #{}</a>', url, submission.pk)

    def get_form(self, request: HttpRequest, obj: Post | None = None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.request = request
        return form

    def get_fields(self, request: HttpRequest, obj: Post | None = None) -> list[str]:
        if obj is None:
            return ["blog", "body", "pinned", "key_event"]
        return ["blog", "body", "pinned", "key_event", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Post | None = None) -> list[str]:
        return [*self.readonly_fields, "blog"] if obj else []

    def save_model(self, request: HttpRequest, obj: Post, form, change: bool) -> None:
        if not change:
            written = services.post_create(
                actor=request.user, blog_id=obj.blog_id, client_id=uuid.uuid4(), body=obj.body,
                key_event=obj.key_event, pinned=obj.pinned,
            )
            if written.desk:  # a contributor's: no post yet, a submission waits for an editor
                obj._submission_id = written.data["id"]
                return
            _reload(obj, written.data["id"])
            return
        services.post_update(
            actor=request.user, blog_id=obj.blog_id, post_id=obj.pk, body=obj.body,
            pinned=obj.pinned, key_event=obj.key_event,
        )
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        if getattr(form.instance, "_submission_id", None) is None:
            super().save_related(request, form, formsets, change)

    def response_add(self, request: HttpRequest, obj: Post, post_url_continue=None):
        """A contributor's post went to the desk: say so, and show the submission (there is
        no post to show until an editor publishes it)."""
        submission_id = getattr(obj, "_submission_id", None)
        if submission_id is None:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            f"Submitted to the desk as submission #{submission_id}: it is not public until an "
            "editor publishes it.",
            messages.SUCCESS,
        )
        if self.admin_site.is_registered(Submission) and request.user.has_perm(
                "liveblog.view_submission"):
            return HttpResponseRedirect(
                reverse("admin:liveblog_submission_change", args=[submission_id]))
        return HttpResponseRedirect(reverse("admin:liveblog_post_changelist"))

    def log_addition(self, request: HttpRequest, obj, message):
        if getattr(obj, "_submission_id", None) is None:
            return super().log_addition(request, obj, message)
        return None

    def get_deleted_objects(self, objs, request: HttpRequest):
        """Deleting a post writes a tombstone: the post and its events stay, so the usual
        cascade listing (and its check for permission to delete events) does not apply."""
        return [str(obj) for obj in objs], {Post._meta.verbose_name_plural: len(objs)}, set(), []

    def delete_model(self, request: HttpRequest, obj: Post) -> None:
        services.post_delete(actor=request.user, blog_id=obj.blog_id, post_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for post in queryset:
            services.post_delete(actor=request.user, blog_id=post.blog_id, post_id=post.pk)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The log is append-only: readable here, never edited by hand."""

    list_display = ["blog", "seq", "kind", "actor", "created_at"]
    list_filter = ["blog", "kind"]
    readonly_fields = ["blog", "seq", "kind", "post", "actor", "frame", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False


class SubmissionActionInline(ReadOnlyInline):
    model = SubmissionAction
    fields = ["action", "actor", "note", "at"]
    readonly_fields = fields
    verbose_name = "step"
    verbose_name_plural = "History (who did what)"


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    """The desk, read-only: editors decide on submissions in the author console (or the API),
    where every decision is numbered on the desk and, once published, in the public log."""

    inlines = [SubmissionActionInline]
    list_display = ["__str__", "blog", "author", "state", "publish_at", "created_at",
                    "updated_at"]
    list_filter = ["state", "blog", "author"]
    search_fields = ["body", "author__username"]
    list_select_related = ["blog", "author"]
    fields = ["blog", "author", "state", "note", "publish_at", "body", "html", "pinned",
              "key_event", "photo_preview", "post_link", "published_seq", "client_id",
              "created_at", "updated_at"]
    readonly_fields = fields

    @admin.display(description="photo")
    def photo_preview(self, submission: Submission) -> str:
        return _photo_preview(submission.photo)

    @admin.display(description="published as")
    def post_link(self, submission: Submission) -> str:
        if submission.post_id is None:
            return "— (not published)"
        post_admin = reverse("admin:liveblog_post_change", args=[submission.post_id])
        reader = reverse("blog-reader", args=[submission.blog.slug])
        return format_html(
            '<a href="{}">post #{}</a> (<a href="{}#post-{}">on the reader page</a>)',
            post_admin, submission.post_id, reader, submission.post_id,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    """Readers' push subscriptions: listed, searched and deleted (a reader makes and changes
    them from the browser; the sender drops those a push service says are gone)."""

    list_display = ["blog", "endpoint_host", "client_network", "created_at", "last_sent_at",
                    "last_error"]
    list_filter = ["blog"]
    search_fields = ["endpoint", "client_network", "blog__slug"]
    list_select_related = ["blog"]
    readonly_fields = ["blog", "endpoint", "p256dh", "auth", "client_network", "created_at",
                       "last_sent_at", "last_error", "last_error_at"]

    @admin.display(description="push service")
    def endpoint_host(self, subscription: PushSubscription) -> str:
        return subscription.endpoint.split("/")[2] if "//" in subscription.endpoint else ""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
