"""Web Push, server side (issue 18, part 3): which subscriptions are accepted, where the
server may send to (at subscribe time and again at send time), the API, which posts push and
how often, and the sender (payload, encryption, headers, 404/410, coalescing, a hanging push
service). The end-to-end run on a real daphne is tests/test_push_daphne.py."""

from __future__ import annotations

import socket
import threading
import uuid

import pytest
import requests
from django.test import Client

from devstack.push import HANG, BrowserKeys, PushReceiver, unb64url, vapid_claims
from liveblog import services
from liveblog.errors import Invalid
from liveblog.models import Post, PushSubscription
from liveblog.push import endpoints, sender, transport, vapid
from liveblog.push.endpoints import EndpointRefused, address_allowed, clean_subscription

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:4700:4700::1111"
ENDPOINT = "https://push.example.net/send/abc"


@pytest.fixture
def resolves(monkeypatch):
    """Decide what each host name resolves to (no DNS in tests)."""
    table: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(f"unknown host {host}")
        return table[host]

    monkeypatch.setattr(endpoints, "resolve", resolve)
    table["push.example.net"] = [PUBLIC_V4, PUBLIC_V6]
    return table


@pytest.fixture
def insecure(settings):
    settings.LIVEBLOG_PUSH_INSECURE_ENDPOINTS = True


# --- Addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize("address", [PUBLIC_V4, "8.8.8.8", PUBLIC_V6, "2a00:1450:4001::200e"])
def test_public_addresses_are_allowed(address):
    assert address_allowed(address, allow_loopback=False)


@pytest.mark.parametrize("address", [
    "10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "127.8.9.10", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1",
    "198.18.0.1",
    "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "ff02::1", "fec0::1",
    "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "64:ff9b::a00:1", "64:ff9b::7f00:1",  # NAT64 of 10.0.0.1, 127.0.0.1
    "2002:7f00:1::1", "2002:a00:1::1",  # 6to4 of 127.0.0.1, 10.0.0.1
    "not-an-address", "",
])
def test_internal_addresses_are_refused(address):
    assert not address_allowed(address, allow_loopback=False)


def test_insecure_mode_allows_loopback_and_nothing_else_internal():
    assert address_allowed("127.0.0.1", allow_loopback=True)
    assert address_allowed("::1", allow_loopback=True)
    assert address_allowed("::ffff:127.0.0.1", allow_loopback=True)
    for address in ("10.0.0.1", "169.254.169.254", "fe80::1", "192.168.0.1"):
        assert not address_allowed(address, allow_loopback=True), address


def test_one_internal_address_among_public_ones_refuses_the_host(resolves):
    resolves["mixed.example"] = [PUBLIC_V4, "10.0.0.7"]
    resolves["mapped.example"] = [PUBLIC_V6, "::ffff:127.0.0.1"]
    assert endpoints.vetted_addresses("push.example.net", 443) == [PUBLIC_V4, PUBLIC_V6]
    for host in ("mixed.example", "mapped.example", "nowhere.example"):
        with pytest.raises(EndpointRefused):
            endpoints.vetted_addresses(host, 443)


# --- Subscriptions ------------------------------------------------------------------------------


def test_a_browser_subscription_is_accepted_as_it_comes():
    keys = BrowserKeys()
    cleaned = clean_subscription(keys.subscription(ENDPOINT))
    assert (cleaned.endpoint, cleaned.p256dh) == (ENDPOINT, keys.p256dh)
    assert unb64url(cleaned.auth) == keys.auth


def _with(change: dict) -> dict:
    data = BrowserKeys().subscription(ENDPOINT)
    for key, value in change.items():
        if key.startswith("keys."):
            data["keys"][key[5:]] = value
        else:
            data[key] = value
    return data


P256_COMPRESSED = "Ag" + "A" * 42  # 33 bytes: a compressed point
POINT_NOT_04 = "BQ" + "A" * 85  # 65 bytes starting 0x05


@pytest.mark.parametrize("change", [
    {"endpoint": None}, {"endpoint": 5}, {"endpoint": ""}, {"endpoint": "push.example.net/x"},
    {"endpoint": "https://" + "a" * 1100 + ".example/"},
    {"endpoint": "https://user:pass@push.example.net/x"},
    {"endpoint": "https://push.example.net/x#frag"}, {"endpoint": "https://push.example.net/ x"},
    {"endpoint": "https://push.example.net:99999/x"}, {"endpoint": "https:///nohost"},
    {"keys.p256dh": "not base64!"}, {"keys.p256dh": P256_COMPRESSED},
    {"keys.p256dh": POINT_NOT_04}, {"keys.p256dh": None}, {"keys.auth": "AAAA"},
    {"keys.auth": "A" * 24}, {"keys.extra": "x"}, {"keys": "x"}, {"other": 1},
    {"expirationTime": "soon"}, {"expirationTime": True},
])
def test_a_malformed_subscription_is_refused(change):
    with pytest.raises(Invalid):
        clean_subscription(_with(change))


@pytest.mark.parametrize("url", ["http://push.example.net/x", "ftp://push.example.net/x",
                                 "javascript:alert(1)", "file:///etc/passwd"])
def test_only_https_endpoints_unless_insecure(url, settings):
    with pytest.raises(EndpointRefused):
        clean_subscription(_with({"endpoint": url}))
    settings.LIVEBLOG_PUSH_INSECURE_ENDPOINTS = True
    if url.startswith("http:"):
        assert clean_subscription(_with({"endpoint": url})).endpoint == url


def test_clients_are_counted_by_address_and_ipv6_by_64():
    assert endpoints.client_network("203.0.113.9") == "203.0.113.9"
    assert endpoints.client_network("::ffff:203.0.113.9") == "203.0.113.9"
    assert endpoints.client_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert endpoints.client_network(None) == "unknown"


# --- At send time: the address actually connected -------------------------------------------


@pytest.fixture
def listener():
    """A loopback socket that counts the connections it accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    yield server
    server.close()


def _accepted(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            connection, _ = server.accept()
        except TimeoutError:
            return count
        connection.close()
        count += 1


def test_a_name_rebound_to_an_internal_address_is_refused_at_send_time(resolves, listener):
    """Stored while it resolved to a public address; by the time a push goes out it resolves
    to loopback (DNS rebinding): the sender refuses before connecting anywhere."""
    port = listener.getsockname()[1]
    resolves["rebind.example"] = [PUBLIC_V4]
    endpoints.vetted_addresses("rebind.example", port)  # what the subscribe saw
    for rebound in (["127.0.0.1"], ["::ffff:127.0.0.1"], [PUBLIC_V4, "127.0.0.1"]):
        resolves["rebind.example"] = rebound
        with pytest.raises(requests.ConnectionError, match="refused rebind.example"):
            transport.post(f"https://rebind.example:{port}/x", body=b"x", headers={},
                           timeout=(1, 1))
    assert _accepted(listener) == 0


def test_the_connection_goes_to_the_vetted_address_and_follows_no_redirect(resolves, insecure):
    """In insecure mode a name resolving to loopback is reached, at the address that was
    vetted (not resolved again by the HTTP library), and a redirect is not followed."""
    with PushReceiver() as receiver:
        port = receiver.server.server_address[1]
        resolves["local.example"] = ["127.0.0.1"]
        receiver.answers["/moved"] = 307
        status = transport.post(f"http://local.example:{port}/moved", body=b"x",
                                headers={"Location": "/elsewhere"}, timeout=(1, 1))
        assert status == 307
        assert [request.path for request in receiver.received] == ["/moved"]
        assert receiver.received[0].headers["host"] == f"local.example:{port}"


# --- The API -------------------------------------------------------------------------------------


def push_url(slug: str = "final") -> str:
    return f"/api/liveblog/{slug}/push"


def send(client: Client, method: str, data: object, slug: str = "final", **extra):
    import json

    return getattr(client, method)(push_url(slug), data=json.dumps(data),
                                   content_type="application/json", **extra)


@pytest.mark.django_db
def test_the_key_is_the_vapid_public_point(client):
    answer = client.get("/api/push/key")
    assert answer.status_code == 200 and "max-age" in answer["Cache-Control"]
    key = answer.json()["key"]
    assert key == vapid.public_key()
    raw = unb64url(key)
    assert len(raw) == 65 and raw[0] == 4


@pytest.mark.django_db
def test_an_anonymous_reader_subscribes_and_unsubscribes(client, blog, resolves):
    data = BrowserKeys().subscription(ENDPOINT)
    first = send(client, "post", data, REMOTE_ADDR="203.0.113.5")
    assert (first.status_code, first.json()) == (201, {"subscribed": True})
    data["keys"]["auth"] = BrowserKeys().subscription(ENDPOINT)["keys"]["auth"]
    again = send(client, "post", data, REMOTE_ADDR="203.0.113.5")
    assert (again.status_code, again.json()) == (200, {"subscribed": True})
    stored = PushSubscription.objects.get()
    assert (stored.blog_id, stored.endpoint, stored.client_network) == (
        blog.pk, ENDPOINT, "203.0.113.5")
    assert stored.auth == data["keys"]["auth"]  # the newer keys
    gone = send(client, "delete", {"endpoint": ENDPOINT})
    assert (gone.status_code, gone.json()) == (200, {"subscribed": False})
    assert not PushSubscription.objects.exists()
    assert send(client, "delete", {"endpoint": ENDPOINT}).status_code == 200


@pytest.mark.django_db
def test_a_signed_in_reader_needs_no_csrf_token(blog, author, resolves):
    client = Client(enforce_csrf_checks=True)
    client.force_login(author)
    assert send(client, "post", BrowserKeys().subscription(ENDPOINT)).status_code == 201


@pytest.mark.django_db
def test_cross_site_writes_and_forms_are_refused(client, blog, resolves):
    data = BrowserKeys().subscription(ENDPOINT)
    foreign = send(client, "post", data, HTTP_ORIGIN="https://evil.example")
    assert (foreign.status_code, foreign.json()["error"]) == (403, "csrf_failed")
    form = client.post(push_url(), data={"endpoint": ENDPOINT})
    assert (form.status_code, form.json()["error"]) == (415, "unsupported_media_type")
    text = client.post(push_url(), data="{}", content_type="text/plain")
    assert text.status_code == 415
    assert not PushSubscription.objects.exists()
    own = send(client, "post", data, HTTP_ORIGIN="http://testserver")
    assert own.status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("data, code", [
    (None, "bad_json"), ([], "bad_json"), ({"endpoint": ENDPOINT}, "invalid"),
    ({"endpoint": ENDPOINT, "keys": {}, "extra": 1}, "invalid"),
])
def test_bad_bodies_are_400(client, blog, resolves, data, code):
    answer = send(client, "post", data)
    assert (answer.status_code, answer.json()["error"]) == (400, code)


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    "https://10.0.0.5/x", "https://169.254.169.254/latest", "https://[fd00::1]/x",
    "https://[::ffff:127.0.0.1]/x", "https://127.0.0.1/x", "https://localhost/x",
    "https://intranet/x", "https://printer.local/x", "https://db.internal/x",
    "https://router.home.arpa/x", "https://app.localhost./x", "http://push.example.net/x",
])
def test_hosts_known_to_be_internal_are_refused_without_asking_dns(client, blog, monkeypatch,
                                                                   url):
    """A request never waits on DNS (a resolver the subscriber controls could hold it): what
    is refused here needs none; what a name resolves to is checked at each send."""
    monkeypatch.setattr(endpoints, "resolve", lambda *args: pytest.fail("resolved in a request"))
    answer = send(client, "post", BrowserKeys().subscription(url))
    assert (answer.status_code, answer.json()["error"]) == (400, "endpoint_refused"), url
    assert not PushSubscription.objects.exists()


@pytest.mark.django_db
def test_a_name_is_stored_unresolved(client, blog, monkeypatch):
    monkeypatch.setattr(endpoints, "resolve", lambda *args: pytest.fail("resolved in a request"))
    answer = send(client, "post", BrowserKeys().subscription("https://inside.example/x"))
    assert answer.status_code == 201


@pytest.mark.django_db
def test_a_subscription_whose_host_resolves_inside_is_dropped_at_send_time(
        blog, author, resolves, listener):
    """Its name resolves to an internal address when the push goes out: nothing connects
    anywhere, and the subscription is forgotten (it can only be hostile or broken)."""
    port = listener.getsockname()[1]
    resolves["inside.example"] = ["10.0.0.5"]
    resolves["rebound.example"] = [PUBLIC_V4, "127.0.0.1"]
    for host in ("inside.example", "rebound.example"):
        subscribe(blog, f"https://{host}:{port}/x")
    written = create(blog, author, "Goal", key_event=True)
    report = sender.Sender(workers=1, post=transport.post).deliver(
        sender.Job(blog_id=blog.pk, post_id=written.data["id"], seq=written.seq))
    assert len(report.gone) == 2 and not report.sent
    assert not PushSubscription.objects.exists()
    assert _accepted(listener) == 0


@pytest.mark.django_db
def test_subscriptions_are_bounded_per_address_and_per_blog(client, blog, resolves, settings):
    settings.LIVEBLOG_PUSH_MAX_PER_ADDRESS = 2
    settings.LIVEBLOG_PUSH_MAX_PER_BLOG = 3
    for n in range(2):
        url = f"{ENDPOINT}/{n}"
        assert send(client, "post", BrowserKeys().subscription(url),
                    REMOTE_ADDR="2001:db8::1").status_code == 201
    # Another address in the same /64 is the same client.
    third = send(client, "post", BrowserKeys().subscription(f"{ENDPOINT}/2"),
                 REMOTE_ADDR="2001:db8::ffff")
    assert (third.status_code, third.json()["error"]) == (429, "too_many_subscriptions")
    assert send(client, "post", BrowserKeys().subscription(f"{ENDPOINT}/3"),
                REMOTE_ADDR="203.0.113.1").status_code == 201
    full = send(client, "post", BrowserKeys().subscription(f"{ENDPOINT}/4"),
                REMOTE_ADDR="203.0.113.2")
    assert (full.status_code, full.json()["error"]) == (409, "subscriptions_full")
    assert PushSubscription.objects.count() == 3


@pytest.mark.django_db
def test_push_writes_are_throttled_per_address(client, blog, resolves, settings):
    settings.LIVEBLOG_THROTTLE_PUSH = "3/60"
    answers = [send(client, "post", BrowserKeys().subscription(f"{ENDPOINT}/{n}")).status_code
               for n in range(4)]
    assert answers == [201, 201, 201, 429]
    assert client.get("/api/push/key").status_code == 200  # reads are not charged here


@pytest.mark.django_db
def test_unknown_blog_and_methods(client, blog, resolves):
    assert send(client, "post", BrowserKeys().subscription(ENDPOINT), slug="nope"
                ).status_code == 404
    assert client.get(push_url()).status_code == 405


# --- Which posts push, and how often -------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch):
    jobs: list[tuple[int, int, int]] = []
    monkeypatch.setattr(sender, "enqueue", lambda *, blog_id, post_id, seq: jobs.append(
        (blog_id, post_id, seq)))
    return jobs


def create(blog, actor, body: str, **fields) -> services.Written:
    return services.post_create(actor=actor, blog_id=blog.pk, client_id=uuid.uuid4(),
                                body=body, **fields)


@pytest.mark.django_db
def test_a_key_event_pushes_once_on_commit(blog, author, enqueued,
                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        plain = create(blog, author, "Kick-off")
        key = create(blog, author, "Goal!", key_event=True)
    assert enqueued == [(blog.pk, key.data["id"], key.seq)]
    assert Post.objects.get(pk=key.data["id"]).pushed_at is not None
    update = lambda post_id, flag: services.post_update(  # noqa: E731
        actor=author, blog_id=blog.pk, post_id=post_id, key_event=flag)
    with django_capture_on_commit_callbacks(execute=True):
        made_key = update(plain.data["id"], True)  # a public post becomes a key event
        update(plain.data["id"], False)
        update(plain.data["id"], True)  # and again: pushed once
        update(key.data["id"], False)
        update(key.data["id"], True)
        services.post_update(actor=author, blog_id=blog.pk, post_id=key.data["id"],
                             body="Goal! 1-0")
    assert enqueued[1:] == [(blog.pk, plain.data["id"], made_key.seq)]


@pytest.mark.django_db
def test_nothing_is_pushed_when_the_write_rolls_back(blog, author, enqueued,
                                                     django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            create(blog, author, "Goal?", key_event=True)
            raise RuntimeError("rolled back")
    assert enqueued == []


# --- The sender --------------------------------------------------------------------------------


class Recorder:
    """A transport that answers from a table and records what it was asked to send."""

    def __init__(self, answers: dict[str, int | Exception] | None = None) -> None:
        self.answers = answers or {}
        self.sent: list[tuple[str, bytes, dict, tuple]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, *, body: bytes, headers: dict, timeout: tuple) -> int:
        with self.lock:
            self.sent.append((url, body, headers, timeout))
        answer = self.answers.get(url, 201)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Gated(Recorder):
    """A Recorder whose sends wait at a gate: `entered` is set once the first send waits."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.entered = threading.Event(), threading.Event()

    def __call__(self, url: str, **kwargs) -> int:
        self.entered.set()
        self.gate.wait(10)
        return super().__call__(url, **kwargs)


def subscribe(blog, endpoint: str) -> BrowserKeys:
    keys = BrowserKeys()
    data = keys.subscription(endpoint)["keys"]
    PushSubscription.objects.create(blog=blog, endpoint=endpoint, **data)
    return keys


@pytest.mark.django_db
def test_the_push_is_encrypted_for_each_subscription_with_the_contract_payload_and_headers(
    blog, author
):
    keys = {f"https://push.example.net/{n}": subscribe(blog, f"https://push.example.net/{n}")
            for n in range(3)}
    written = create(blog, author, "**Goal** for the home side " + "x" * 400, key_event=True)
    recorder = Recorder()
    report = sender.Sender(workers=2, post=recorder).deliver(
        sender.Job(blog_id=blog.pk, post_id=written.data["id"], seq=written.seq))
    assert len(report.sent) == 3 and not report.failed
    assert sorted(url for url, *_ in recorder.sent) == sorted(keys)
    for url, body, headers, timeout in recorder.sent:
        message = keys[url].decrypt(body)
        assert message == {
            "blog": "final", "title": "Cup final", "post": written.data["id"],
            "seq": written.seq, "text": message["text"], "image": None,
            "url": f"/liveblog/final/#post-{written.data['id']}",
        }
        assert message["text"].startswith("Goal for the home side xxx")
        assert len(message["text"]) == 280 and message["text"].endswith("…")
        assert headers["Urgency"] == "high" and headers["Content-Encoding"] == "aes128gcm"
        assert headers["TTL"] == "21600" and headers["Topic"] == f"liveblog-{blog.pk}"
        claims = vapid_claims(headers["Authorization"], vapid.public_key())
        assert claims["aud"] == "https://push.example.net" and claims["sub"].startswith("mailto:")
        assert timeout == (3, 5)
    assert PushSubscription.objects.filter(last_sent_at__isnull=False).count() == 3


@pytest.mark.django_db
def test_gone_subscriptions_are_deleted_and_failures_recorded(blog, author):
    for name in ("ok", "gone", "missing", "busy", "down"):
        subscribe(blog, f"https://push.example.net/{name}")
    subscribe(blog, "https://other.example.net/x")
    recorder = Recorder({
        "https://push.example.net/gone": 410, "https://push.example.net/missing": 404,
        "https://push.example.net/busy": 429,
        "https://push.example.net/down": requests.ConnectTimeout("timed out"),
    })
    written = create(blog, author, "Red card", key_event=True)
    report = sender.Sender(workers=1, post=recorder).deliver(
        sender.Job(blog_id=blog.pk, post_id=written.data["id"], seq=written.seq))
    assert len(recorder.sent) == 6  # each once: no retries
    left = dict(PushSubscription.objects.values_list("endpoint", "last_error"))
    assert left == {
        "https://push.example.net/ok": "", "https://push.example.net/busy": "HTTP 429",
        "https://push.example.net/down": "ConnectTimeout", "https://other.example.net/x": "",
    }
    assert len(report.gone) == 2


@pytest.mark.django_db
def test_a_push_service_that_keeps_timing_out_is_skipped_for_the_rest_of_the_batch(blog, author):
    for n in range(10):
        subscribe(blog, f"https://hanging.example/{n}")
    subscribe(blog, "https://healthy.example/1")
    recorder = Recorder({f"https://hanging.example/{n}": requests.ReadTimeout("slow")
                         for n in range(10)})
    written = create(blog, author, "Penalty", key_event=True)
    report = sender.Sender(workers=1, post=recorder).deliver(
        sender.Job(blog_id=blog.pk, post_id=written.data["id"], seq=written.seq))
    hanging = [url for url, *_ in recorder.sent if "hanging" in url]
    assert len(hanging) == sender.HOST_FAILURES_TO_SKIP and report.skipped == 7
    assert "https://healthy.example/1" in [url for url, *_ in recorder.sent]


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_key_events_coalesces_to_the_newest(blog, author):
    """Three key events of one blog queued while the sender is busy: each subscription gets
    the newest only (and one of another blog still gets its own)."""
    other = services.blog_create(actor=blog.owner, slug="semi", title="Semi-final")
    keys = subscribe(blog, "https://push.example.net/a")
    other_keys = subscribe(other, "https://push.example.net/b")
    recorder = Gated()
    pusher = sender.Sender(workers=2, post=recorder)
    first = create(blog, blog.owner, "Warm-up", key_event=True)
    pusher.enqueue(sender.Job(blog.pk, first.data["id"], first.seq))
    assert recorder.entered.wait(10)  # the sender is busy sending this one
    burst = [create(blog, blog.owner, f"Goal {n}", key_event=True) for n in range(3)]
    semi = create(other, blog.owner, "Semi goal", key_event=True)
    for written in burst:
        pusher.enqueue(sender.Job(blog.pk, written.data["id"], written.seq))
    pusher.enqueue(sender.Job(other.pk, semi.data["id"], semi.seq))
    recorder.gate.set()
    assert pusher.idle(10)
    got = [(url, (keys if url.endswith("/a") else other_keys).decrypt(body)["post"])
           for url, body, *_ in recorder.sent]
    assert got == [("https://push.example.net/a", first.data["id"]),
                   ("https://push.example.net/a", burst[-1].data["id"]),
                   ("https://push.example.net/b", semi.data["id"])]


@pytest.mark.django_db
def test_a_deleted_post_is_not_pushed(blog, author):
    subscribe(blog, "https://push.example.net/a")
    written = create(blog, author, "Offside?", key_event=True)
    services.post_delete(actor=author, blog_id=blog.pk, post_id=written.data["id"])
    recorder = Recorder()
    assert sender.Sender(post=recorder).deliver(
        sender.Job(blog.pk, written.data["id"], written.seq)) is None
    assert recorder.sent == []


@pytest.mark.django_db
def test_the_image_is_a_variant_at_most_800_wide(blog, author):
    from liveblog.models import Photo
    from liveblog.push.payload import image_url

    post = Post.objects.get(pk=create(blog, author, "Photo", key_event=True).data["id"])
    post.photo = Photo.objects.create(blog=blog, uploaded_by=author, alt="Crowd", width=1600,
                                      height=900, variants=[
                                          {"name": "p-320.jpg", "width": 320, "height": 180},
                                          {"name": "p-800.jpg", "width": 800, "height": 450},
                                          {"name": "p-1600.jpg", "width": 1600, "height": 900}])
    assert image_url(post).endswith("p-800.jpg")


def test_the_receiver_can_hang():
    """The test push service's never-answering mode (used on daphne) holds a request open."""
    with PushReceiver() as receiver:
        receiver.answers["/hang"] = HANG
        with pytest.raises(requests.ReadTimeout):
            requests.post(receiver.url("/hang"), data=b"x", timeout=(1, 0.3))


@pytest.mark.django_db(transaction=True)
async def test_a_key_event_posted_over_the_websocket_pushes_too(blog, author, enqueued):
    """The author's websocket path publishes through the same service: pushed on commit."""
    from tests.support.comms import Reader

    writer = await Reader.open("final", user=author)
    await writer.until(lambda frame: frame["type"] == "live")
    await writer.send({"type": "post", "client_id": str(uuid.uuid4()), "body": "Own goal",
                       "key_event": True})
    [*_, ack] = await writer.until(lambda frame: frame["type"] == "ack")
    assert ack["post"]["key_event"] is True
    assert enqueued == [(blog.pk, ack["post"]["id"], ack["seq"])]
    await writer.close()


@pytest.mark.django_db
def test_the_admin_lists_searches_and_deletes_subscriptions(blog, owner):
    owner.is_superuser = True
    owner.save()
    subscribe(blog, "https://push.example.net/findme")
    subscribe(blog, "https://push.example.net/other")
    admin = Client()
    admin.force_login(owner)
    page = admin.get("/admin/liveblog/pushsubscription/?q=findme")
    assert page.status_code == 200 and b"push.example.net" in page.content
    assert page.context["cl"].result_count == 1
    target = PushSubscription.objects.get(endpoint__endswith="findme")
    gone = admin.post(f"/admin/liveblog/pushsubscription/{target.pk}/delete/", {"post": "yes"})
    assert gone.status_code == 302
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [
        "https://push.example.net/other"]
    assert admin.get("/admin/liveblog/pushsubscription/add/").status_code == 403


# --- The VAPID key ---------------------------------------------------------------------------


@pytest.fixture
def fresh_vapid():
    vapid.forget()
    yield
    vapid.forget()


def test_the_vapid_key_is_generated_once_into_var_with_mode_0600(settings, tmp_path,
                                                                  fresh_vapid):
    settings.LIVEBLOG_VAPID_PRIVATE_KEY = ""
    settings.LIVEBLOG_VAPID_KEY_FILE = tmp_path / "var" / "vapid_private_key.pem"
    key = vapid.public_key()
    path = settings.LIVEBLOG_VAPID_KEY_FILE
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert path.stat().st_mode & 0o777 == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    vapid.forget()
    assert vapid.public_key() == key  # read again, not made again


def test_the_vapid_key_from_the_environment_is_the_raw_base64url_key(settings, fresh_vapid):
    from cryptography.hazmat.primitives.asymmetric import ec

    from devstack.push import b64url

    private = ec.generate_private_key(ec.SECP256R1())
    settings.LIVEBLOG_VAPID_PRIVATE_KEY = b64url(private.private_numbers().private_value
                                                 .to_bytes(32, "big"))
    assert vapid.public_key() == BrowserKeys(private=private).p256dh


@pytest.mark.parametrize("value", ["not-a-key", "-----BEGIN PRIVATE KEY-----", "AAAA"])
def test_a_malformed_vapid_key_in_the_environment_stops_the_server(value):
    import os
    import subprocess
    import sys

    env = {**os.environ, "LIVEBLOG_VAPID_PRIVATE_KEY": value, "SECRET_KEY": "x" * 50}
    result = subprocess.run([sys.executable, "-c", "import project.settings"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "LIVEBLOG_VAPID_PRIVATE_KEY must be the base64url raw 32-byte" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_running_batch_stops_handing_out_an_older_key_event(blog):
    """A newer key event of the blog arrives while the older one's batch is being sent: the
    subscriptions not reached yet get only the newer one."""
    all_keys = [subscribe(blog, f"https://push.example.net/{n}") for n in range(6)]
    recorder = Gated()
    pusher = sender.Sender(workers=1, post=recorder)
    older = create(blog, blog.owner, "Goal", key_event=True)
    pusher.enqueue(sender.Job(blog.pk, older.data["id"], older.seq))
    assert recorder.entered.wait(10)
    newer = create(blog, blog.owner, "Goal disallowed", key_event=True)
    pusher.enqueue(sender.Job(blog.pk, newer.data["id"], newer.seq))
    recorder.gate.set()
    assert pusher.idle(10)
    by_post: dict[int, int] = {}
    for url, body, *_ in recorder.sent:
        post = all_keys[int(url.rsplit("/", 1)[1])].decrypt(body)["post"]
        by_post[post] = by_post.get(post, 0) + 1
    assert by_post[newer.data["id"]] == 6
    assert 1 <= by_post[older.data["id"]] < 6
    assert pusher.reports[-2].superseded and not pusher.reports[-1].superseded
