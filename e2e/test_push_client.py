"""Web Push in the reader's browser (Chromium): the button subscribes and unsubscribes through the
real API, the service worker shows what the server pushed, and a tap opens the post after the
page has caught up.

What is real and what is not: this Chromium has no push service to reach (`subscribe()` needs
Google's FCM, on the internet), so the page's PushManager is stood in for by an init script that
hands out a subscription at a local push service (devstack.push.PushReceiver) with keys this test
holds. Everything else is the app's: the permission (granted to the context; the prompt is only
asked for on the tap), GET /api/push/key, POST/DELETE of the subscription, the server's
encrypted push to the endpoint (decrypted here with the subscription's keys), the worker's
`push` handler (driven through the DevTools protocol, `ServiceWorker.deliverPushMessage`, with
that decrypted payload) and its click handler: headless Chromium cannot click a notification,
so the test calls the worker's `notificationClicked` with the notification it shows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import NamedTuple

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, CDPSession, Page, Worker, expect

from devstack.common import wait_until
from devstack.daphne import DaphneServer
from devstack.push import BrowserKeys, PushReceiver, unb64url

from .test_offline_pwa import offline_errors, poll

pytestmark = [pytest.mark.e2e, pytest.mark.daphne_env(LIVEBLOG_PUSH_INSECURE_ENDPOINTS="1")]

SLUG = "match"
READER = f"/liveblog/{SLUG}/"
ENDPOINT_PATH = "/push/reader-1"
LABEL_OFF = "Notify me of key events"
LABEL_ON = "Notifications on — turn off"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")

# The page's PushManager, standing in for a push service this machine cannot reach (see above).
# The subscription outlives a reload (localStorage) as a browser's does; requestPermission calls
# are counted.
FAKE_PUSH_MANAGER = """
((endpoint, p256dh, auth) => {
  const STORED = "test:push-subscription";
  const subscription = (key) => ({
    endpoint, expirationTime: null,
    options: { userVisibleOnly: true, applicationServerKey: Uint8Array.from(key).buffer },
    toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh, auth } }),
    unsubscribe: async () => { localStorage.removeItem(STORED); return true; },
  });
  PushManager.prototype.getSubscription = async function () {
    const key = JSON.parse(localStorage.getItem(STORED) || "null");
    return key ? subscription(key) : null;
  };
  PushManager.prototype.subscribe = async function ({ userVisibleOnly, applicationServerKey }) {
    if (userVisibleOnly !== true) throw new DOMException("userVisibleOnly", "NotAllowedError");
    const key = [...new Uint8Array(applicationServerKey)];
    localStorage.setItem(STORED, JSON.stringify(key));
    return subscription(key);
  };
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...args) => {
    localStorage.setItem("test:asked", String(Number(localStorage.getItem("test:asked")) + 1));
    return ask(...args);
  };
})(%s, %s, %s);
"""

NOTIFICATIONS = """async () => (await navigator.serviceWorker.ready).getNotifications().then(
  (shown) => shown.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data,
                                 icon: n.icon, badge: n.badge, image: n.image })))"""


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    with PushReceiver() as push_service:
        yield push_service


class Reader(NamedTuple):
    context: BrowserContext
    page: Page
    keys: BrowserKeys  # the subscription's keys, private one included: to read what was pushed


@pytest.fixture
def reader(browser, server, receiver, browser_errors) -> Iterator[Reader]:
    """A reader's browser: notifications allowed for the site, the stand-in PushManager."""
    keys = BrowserKeys()
    context = browser.new_context(base_url=server.url)
    context.grant_permissions(["notifications"], origin=server.url)
    context.add_init_script(FAKE_PUSH_MANAGER % tuple(
        json.dumps(value) for value in (receiver.url(ENDPOINT_PATH), keys.p256dh,
                                        keys.subscription("")["keys"]["auth"])))
    page = context.new_page()
    browser_errors.watch(page, "reader")
    browser_errors.watch_workers(context)
    try:
        yield Reader(context, page, keys)
    finally:
        context.close()


def subscriptions(server: DaphneServer) -> list[str]:
    """The endpoints the server holds for the blog."""
    output = server.site.manage("shell", "-c", (
        "from liveblog.models import PushSubscription as P; import json; "
        f"print(json.dumps(list(P.objects.filter(blog__slug={SLUG!r})"
        ".values_list('endpoint', flat=True))))"))
    return json.loads(output.strip().splitlines()[-1])


def registration_ids(cdp: CDPSession) -> list[str]:
    """Service worker registrations, as the DevTools protocol reports them."""
    found: list[str] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: found.extend(
        registration["registrationId"] for registration in event["registrations"]
        if not registration["isDeleted"]))
    cdp.send("ServiceWorker.enable")
    return found


# The worker's click handler, called on the notification with this tag; openWindow recorded
# instead of called when asked (only a real click may open a window). Answers the URLs it
# would have opened.
CLICK = """async ({ tag, stubOpenWindow }) => {
  const asked = [];
  if (stubOpenWindow) self.clients.openWindow = async (url) => { asked.push(url); return null; };
  const [notification] = await self.registration.getNotifications({ tag });
  await notificationClicked(notification);
  return asked;
}"""


# Counts the notifications the worker has finished showing (its showNotification, wrapped by the
# test), so that nothing is read before the worker is done: a getNotifications() polled while the
# notification was being shown was seen to miss it for good (about 1 run in 10, the worker having
# shown it). The worker is not stopped meanwhile: one with DevTools attached is kept running.
COUNT_SHOWN = """() => {
  if (self.testShown === undefined) {
    self.testShown = 0;
    const show = self.registration.showNotification.bind(self.registration);
    self.registration.showNotification = async (...args) => {
      await show(...args);
      self.testShown += 1;
    };
  }
  return self.testShown;
}"""


def deliver(cdp: CDPSession, worker: Worker, server: DaphneServer, registrations: list[str],
            data: str) -> None:
    """A push message to the worker, as the browser delivers a decrypted one; returns once the
    worker has shown its notification."""
    wait_until(lambda: registrations, timeout=10, message="the worker's registration id")
    shown = worker.evaluate(COUNT_SHOWN)
    cdp.send("ServiceWorker.deliverPushMessage",
             {"origin": server.url, "registrationId": registrations[-1], "data": data})
    wait_until(lambda: worker.evaluate(COUNT_SHOWN) > shown, timeout=10,
               message="the worker to show the notification")


def publish_key_event(api, body: str, image: bytes | None = None) -> int:
    """A key event; with a photo, posted as the console does and then marked a key event."""
    if image is None:
        return api.post(SLUG, body, key_event=True)["post"]["id"]
    post_id = api.post_photo(SLUG, image, alt="The winning goal", body=body)["post"]["id"]
    status, _ = api.request("PATCH", f"/api/liveblog/{SLUG}/posts/{post_id}", {"key_event": True})
    assert status == 200
    return post_id


def pushed(keys: BrowserKeys, receiver: PushReceiver, *, count: int) -> dict:
    """The `count`-th push the server sent to the reader's endpoint, decrypted."""
    wait_until(lambda: len(receiver.at(ENDPOINT_PATH)) >= count, timeout=15,
               message=f"push number {count}")
    return keys.decrypt(receiver.at(ENDPOINT_PATH)[count - 1].body)


def photo() -> bytes:
    out = io.BytesIO()
    Image.radial_gradient("L").resize((1200, 800)).convert("RGB").save(out, "JPEG")
    return out.getvalue()


def test_a_tap_subscribes_a_push_shows_the_key_event_and_its_tap_opens_the_post(
    reader, server, api, receiver, browser_errors
):
    context, page, keys = reader
    api.post(SLUG, "Kick-off")
    cdp = context.new_cdp_session(page)
    registrations = registration_ids(cdp)
    # A cookie of the site (as a signed-in reader's session is one): the push calls omit them all.
    context.add_cookies([{"name": "reader", "value": "someone", "url": server.url}])
    requests = []
    page.on("request", lambda request: requests.append(request)
            if request.url.startswith(f"{server.url}/api/") else None)
    page.goto(READER)
    poll(page, "() => navigator.serviceWorker.controller !== null",
         message="the service worker to take control")
    toggle = page.locator("#push-toggle")
    expect(toggle).to_have_text(LABEL_OFF)
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(toggle).to_be_enabled()
    assert page.evaluate("localStorage.getItem('test:asked')") is None, "asked on page load"

    # The tap: the permission is asked for then, the subscription made with the server's key and
    # handed to the blog's push endpoint.
    toggle.click()
    expect(toggle).to_have_text(LABEL_ON)
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("localStorage.getItem('test:asked')") == "1"
    assert subscriptions(server) == [receiver.url(ENDPOINT_PATH)]
    calls = [(request.method, request.url.removeprefix(server.url)) for request in requests]
    assert calls == [("GET", "/api/push/key"), ("POST", f"/api/liveblog/{SLUG}/push")]
    assert not [request for request in requests if "cookie" in request.all_headers()]
    assert "reader=someone" in page.evaluate("document.cookie")  # the page itself has it
    server_key = api.request("GET", "/api/push/key")[1]["key"]
    subscribed_key = json.loads(page.evaluate("localStorage.getItem('test:push-subscription')"))
    assert bytes(subscribed_key) == unb64url(server_key)

    # The reader leaves the blog (to the blog list). With no network, a key event with a photo is
    # published: the server pushes it.
    page.goto("/")
    with browser_errors.tolerated(offline_errors(server.port)):
        context.set_offline(True)
        post_id = publish_key_event(api, "GOAL! 1-0 to the home side", photo())
        payload = pushed(keys, receiver, count=1)
        assert payload["url"] == f"{READER}#post-{post_id}"

        # The push reaches the worker (as the browser would deliver it, decrypted): it shows it.
        worker = context.service_workers[0]
        deliver(cdp, worker, server, registrations, json.dumps(payload))
        [shown] = page.evaluate(NOTIFICATIONS)
        assert (shown["title"], shown["body"], shown["tag"], shown["data"]["url"]) == (
            "Cup final", "GOAL! 1-0 to the home side", f"liveblog-{SLUG}",
            f"{READER}#post-{post_id}")
        assert shown["icon"].endswith(".png") and shown["badge"].endswith(".png")
        assert shown["image"] == server.url + payload["image"]

        # The tap, with no window of the blog open: a new one opens at the post (the worker's
        # openWindow, which only a real click may call, is recorded and the test opens it).
        opened = worker.evaluate(CLICK, {"tag": f"liveblog-{SLUG}", "stubOpenWindow": True})
        assert opened == [f"{server.url}{READER}#post-{post_id}"]
        assert page.evaluate(NOTIFICATIONS) == []  # the tapped notification is closed
        page.goto(opened[0])  # offline: the worker answers with the copy it kept
        post = page.locator(f"#post-{post_id}")
        poll(page, "() => window.liveblog?.fromLocalCopy === true",
             message="the page drawn from the local copy")
        expect(page.locator("#feed .post-body")).to_have_text(["Kick-off"])
        expect(post).to_have_count(0)
        expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")
        # The network returns: the page catches up, then shows the post.
        context.set_offline(False)
        expect(post).to_contain_text("GOAL! 1-0")
        expect(post).to_be_focused()
        expect(post).to_be_in_viewport()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    # A window of the blog is open (this one, live): a tap takes it to the new post.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    second = publish_key_event(api, "Second goal: 2-0")
    payload = pushed(keys, receiver, count=2)
    # A burst replaces the blog's notification (one tag per blog); an unreadable push still shows
    # a generic one.
    burst = (json.dumps({**payload, "text": "An earlier text"}), "not json", json.dumps(payload))
    for data in burst:
        deliver(cdp, worker, server, registrations, data)
    shown = sorted((n["tag"], n["body"]) for n in page.evaluate(NOTIFICATIONS))
    assert shown == [("liveblog", "A new key event"), (f"liveblog-{SLUG}", "Second goal: 2-0")]
    assert worker.evaluate(CLICK, {"tag": f"liveblog-{SLUG}", "stubOpenWindow": True}) == []
    expect(page).to_have_url(f"{server.url}{READER}#post-{second}")
    expect(page.locator(f"#post-{second}")).to_be_focused()
    expect(page.locator(f"#post-{second}")).to_be_in_viewport()
    # Tapped again with the page already at that post, scrolled away: it is shown again.
    page.locator(f"#post-{post_id}").focus()
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    deliver(cdp, worker, server, registrations, json.dumps(payload))
    assert worker.evaluate(CLICK, {"tag": f"liveblog-{SLUG}", "stubOpenWindow": True}) == []
    expect(page.locator(f"#post-{second}")).to_be_focused()
    expect(page.locator(f"#post-{second}")).to_be_in_viewport()

    # Off, with the same button: the server forgets it, the browser's subscription goes too.
    toggle.click()
    expect(toggle).to_have_text(LABEL_OFF)
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert subscriptions(server) == []
    assert page.evaluate("localStorage.getItem('test:push-subscription')") is None


def test_where_push_cannot_work_the_button_says_why(new_page):
    cases = {
        "This browser cannot show notifications from this site": "delete window.PushManager;",
        "Add this site to your Home Screen to get notifications": (
            f"Object.defineProperty(navigator, 'userAgent', {{get: () => {json.dumps(IPHONE)}}});"),
    }
    for reason, setup in cases.items():
        page = new_page(reason)
        page.add_init_script(setup)
        page.goto(READER)
        toggle = page.locator("#push-toggle")
        expect(toggle).to_be_disabled()
        expect(toggle).to_have_text(LABEL_OFF)
        expect(page.locator("#push-note")).to_have_text(reason)
        expect(toggle).to_have_attribute("aria-describedby", "push-note")
