import os
import uuid

import pytest
from channels.layers import channel_layers
from django.core.cache import caches
from django.core.management import call_command
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from liveblog import services
from liveblog.live import broadcast
from liveblog.live.hub import forget_hubs

# Property tests (tests/test_prop_*.py). "ci", the default, is derandomized so that a failure
# reproduces on the next run; `make fuzz` (LIVEBLOG_FUZZ=1) runs many more, new examples.
_PROPERTY_DEFAULTS = {
    "deadline": None,  # database writes and websocket round trips vary in time
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
hypothesis_settings.register_profile(
    "ci", max_examples=50, stateful_step_count=40, derandomize=True, **_PROPERTY_DEFAULTS
)
hypothesis_settings.register_profile(
    "fuzz", max_examples=500, stateful_step_count=60, derandomize=False, **_PROPERTY_DEFAULTS
)
hypothesis_settings.load_profile("fuzz" if os.environ.get("LIVEBLOG_FUZZ") == "1" else "ci")


@pytest.fixture(scope="session", autouse=True)
def static_manifest():
    """Pages reference hashed static names; build the manifest once per run."""
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def streams_end_with_their_last_reader(settings):
    """In-process tests see a stream end when its last reader leaves (tests/test_hub.py tests
    the linger itself); server processes keep the default."""
    settings.LIVEBLOG_STREAM_LINGER_SECONDS = 0


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test gets its own in-memory layer and hub (they are bound to one event loop), and
    no server loop until the ASGI application runs on one."""
    channel_layers.backends.clear()
    forget_hubs()
    broadcast.serve_on(None)
    yield
    channel_layers.backends.clear()
    forget_hubs()
    broadcast.serve_on(None)


@pytest.fixture(autouse=True)
def fresh_cache():
    """Throttle counters (the default cache) start empty in every test: ids are reused."""
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(
        "olivia", password="olivia-password", first_name="Olivia", last_name="Owner",
        is_staff=True,
    )


@pytest.fixture
def author(django_user_model):
    return django_user_model.objects.create_user(
        "alice", password="alice-password", first_name="Alice", last_name="Author"
    )


@pytest.fixture
def stranger(django_user_model):
    return django_user_model.objects.create_user("sam", password="sam-password")


@pytest.fixture
def blog(owner, author):
    blog = services.blog_create(actor=owner, slug="final", title="Cup final")
    blog.authors.add(author)
    return blog


@pytest.fixture
def make_post(blog, author):
    """Publish through the service, as every transport does."""

    def make(body: str = "Goal!", *, actor=None, client_id=None, **fields):
        return services.post_create(
            actor=actor or author, blog_id=blog.pk, client_id=client_id or uuid.uuid4(),
            body=body, **fields,
        )

    return make
