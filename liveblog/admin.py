"""Admin: managing blogs, authors and posts. Every visible change goes through the services, so an
admin edit is numbered, logged and broadcast exactly like one from the API."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.html import format_html, format_html_join

from . import protocol, services
from .errors import LiveblogError
from .models import Blog, Event, Post
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


@admin.register(Blog)
class BlogAdmin(ServiceErrorsAsMessages, admin.ModelAdmin):
    form = BlogForm
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


@admin.register(Post)
class PostAdmin(ServiceErrorsAsMessages, admin.ModelAdmin):
    form = PostAdminForm
    list_display = ["__str__", "blog", "author", "created_at", "pinned", "key_event", "is_deleted"]
    list_filter = ["blog", "pinned", "key_event"]
    search_fields = ["body"]
    readonly_fields = [
        "client_id", "author", "html", "photo_preview", "created_at", "edited_at", "deleted_at",
    ]
    list_select_related = ["blog", "author"]

    @admin.display(boolean=True, description="deleted")
    def is_deleted(self, post: Post) -> bool:
        return post.deleted_at is not None

    @admin.display(description="photo")
    def photo_preview(self, post: Post) -> str:
        """The photo as readers see it, its alt text and every stored variant (read-only:
        photos come from the author's phone through the API)."""
        photo = post.photo
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
            _reload(obj, written.data["id"])
            return
        services.post_update(
            actor=request.user, blog_id=obj.blog_id, post_id=obj.pk, body=obj.body,
            pinned=obj.pinned, key_event=obj.key_event,
        )
        obj.refresh_from_db()

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

    list_display = ["blog", "seq", "kind", "created_at"]
    list_filter = ["blog", "kind"]
    readonly_fields = ["blog", "seq", "kind", "post", "frame", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False
