"""A phone handed from one person to the next, in real Chromium with a persistent profile: what
one user saw and wrote is never shown to, or sent as, the next.

- staff open the admin and the console, sign out, go offline: neither comes from the cache;
- A queues posts offline and signs out keeping them; B signs in: B sees none of A's text and
  nothing goes out as B; A signs in again: A's posts go out once, in order, as A;
- the same with Background Sync and no console open;
- a session replaced underneath an open console (someone else signed in) sends nothing.
"""

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from devstack.common import wait_until
from devstack.daphne import ApiClient, DaphneServer

from .test_offline_pwa import offline_errors

pytestmark = pytest.mark.e2e

SLUG = "match"
CONSOLE = f"/liveblog/{SLUG}/write/"
READER = f"/liveblog/{SLUG}/"
OUTBOX_TIMEOUT_MS = 20_000  # slack for retries with backoff on a loaded machine, not a sleep
OTHER = ("deskmate", "another-horse-battery")


def add_author(server: DaphneServer, username: str, password: str) -> None:
    server.site.manage("shell", "-c", (
        "from django.contrib.auth.models import User; from liveblog.models import Blog; "
        f"user = User.objects.create_user({username!r}, password={password!r}); "
        f"Blog.objects.get(slug={SLUG!r}).authors.add(user)"
    ))


def sign_in(page: Page, server: DaphneServer, username: str, password: str,
            then: str = CONSOLE) -> None:
    page.goto(f"{server.url}/accounts/login/?next={then}")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator(".login-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))
    expect(page.locator("#sign-out")).to_have_attribute("data-ready", "true")


def sign_in_a(page: Page, server: DaphneServer, then: str = CONSOLE) -> None:
    sign_in(page, server, server.site.username, server.site.password, then)


def sign_out(page: Page) -> None:
    expect(page.locator("#sign-out")).to_have_attribute("data-ready", "true")
    page.locator("#sign-out button[type=submit]").click()


def signed_out(page: Page, server: DaphneServer) -> None:
    """The sign-out has finished: the page it goes to is shown, rendered for nobody."""
    expect(page).to_have_url(f"{server.url}/")
    expect(page.locator("#sign-out")).to_have_count(0)


def write(page: Page, text: str) -> None:
    expect(page.locator("#compose")).to_have_attribute("data-ready", "true")
    page.locator("#compose textarea[name=body]").fill(text)
    page.locator("#compose button[type=submit]").click()
    expect(page.locator("#outbox li", has_text=text)).to_have_count(1)


def expect_sent(page: Page, texts: list[str]) -> None:
    for text in texts:
        expect(page.locator("#outbox li", has_text=text)).to_have_attribute(
            "data-state", "sent", timeout=OUTBOX_TIMEOUT_MS
        )


def published(api: ApiClient) -> list[tuple[str, str]]:
    """(body, author's username) of every post, oldest first, as the server has them."""
    status, answer = api.request("GET", f"/api/liveblog/{SLUG}/posts?limit=100")
    assert status == 200
    return [(post["body"], post["author"]["username"]) for post in reversed(answer["posts"])]


def wait_for_offline_console(page: Page) -> None:
    wait_until(lambda: page.evaluate("() => navigator.serviceWorker.controller !== null"),
               timeout=15, message="the service worker to take control")
    wait_until(lambda: page.evaluate("async () => Boolean(await caches.match(location.href))"),
               timeout=15, message="the console in the service worker's cache")


def user_caches(page: Page) -> list[str]:
    return page.evaluate(
        "async () => (await caches.keys()).filter((name) => name.startsWith('liveblog-user-'))"
    )


def outbox_entries(page: Page) -> list[list]:
    """[owner, state, body] of every outbox entry on this device (any page has the outbox)."""
    return page.evaluate("""async () => (await globalThis.LiveblogOutbox.entries())
        .map((entry) => [entry.owner, entry.state, entry.fields.body])""")


def expect_offline_page(page: Page) -> None:
    expect(page.locator("h1")).to_have_text("You are offline")
    expect(page.locator("#sign-out")).to_have_count(0)  # rendered for nobody


def queue_offline_and_sign_out_keeping(context: BrowserContext, page: Page,
                                       server: DaphneServer, texts: list[str]) -> None:
    """A, in the console, queues `texts` and leaves a draft with no network, then signs out
    and keeps the unsent posts; the network comes back."""
    context.set_offline(True)
    for text in texts:
        write(page, text)
        expect(page.locator("#outbox li", has_text=text)).to_have_attribute("data-state", "queued")
    page.locator("#compose textarea[name=body]").fill("Half-written by A")
    sign_out(page)
    dialog = page.locator("#sign-out-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"{len(texts)} updates have not been sent yet.")
    for text in texts:
        expect(dialog.locator(".sign-out-list")).to_contain_text(text)
    dialog.get_by_role("button", name="Keep them for me").click()
    expect(page).to_have_url(f"{server.url}/")  # with no network: the offline page
    expect_offline_page(page)
    assert user_caches(page) == []
    context.set_offline(False)


def a_leaves_posts_behind(open_browser, page_in, server: DaphneServer, browser_errors,
                          texts: list[str]) -> tuple[BrowserContext, Page]:
    """B is an author too; A signs in on a fresh phone and leaves `texts` queued (kept) and a
    draft behind (queue_offline_and_sign_out_keeping)."""
    add_author(server, *OTHER)
    context = open_browser()
    page = page_in(context)
    sign_in_a(page, server)
    wait_for_offline_console(page)
    with browser_errors.tolerated(offline_errors(server.port)):
        queue_offline_and_sign_out_keeping(context, page, server, texts)
    return context, page


def user_id(server: DaphneServer, username: str) -> str:
    return server.site.manage("shell", "-c", (
        "from django.contrib.auth.models import User; "
        f"print(User.objects.get(username={username!r}).pk)"
    )).split()[-1]


def expect_nothing_of_a(page: Page, texts: list[str]) -> None:
    expect(page.locator("#outbox li")).to_have_count(0)
    expect(page.locator("#compose textarea[name=body]")).to_have_value("")
    content = page.content()
    for text in [*texts, "Half-written by A"]:
        assert text not in content


def test_staff_pages_are_not_left_for_the_next_person(open_browser, page_in, server,
                                                     browser_errors):
    server.site.manage("shell", "-c", (
        "from django.contrib.auth.models import User; "
        f"User.objects.filter(username={server.site.username!r})"
        ".update(is_staff=True, is_superuser=True)"
    ))
    context = open_browser()
    page = page_in(context)
    sign_in_a(page, server)
    wait_for_offline_console(page)
    page.goto(server.url + "/admin/auth/user/")
    expect(page.locator("#result_list")).to_contain_text(server.site.username)
    assert page.evaluate("async () => (await caches.match(location.href)) === undefined")
    page.goto(server.url + CONSOLE)
    sign_out(page)
    signed_out(page, server)
    assert user_caches(page) == []
    with browser_errors.tolerated(offline_errors(server.port)):
        context.set_offline(True)
        for url in ("/admin/auth/user/", CONSOLE):
            page.goto(server.url + url)
            expect_offline_page(page)


def test_posts_kept_at_sign_out_go_out_as_their_author_and_no_one_else(
    open_browser, page_in, server, api, browser_errors
):
    texts = ["Teams are out", "Kick-off!"]
    context, page = a_leaves_posts_behind(open_browser, page_in, server, browser_errors, texts)
    # B signs in on the same phone: the worker first finishes A's sign-out on the server.
    sign_in(page, server, *OTHER)
    expect_nothing_of_a(page, texts)
    write(page, "B's own update")
    expect_sent(page, ["B's own update"])
    assert published(api) == [("B's own update", OTHER[0])]
    assert outbox_entries(page) == [
        *[[user_id(server, server.site.username), "queued", text] for text in texts],
        [user_id(server, OTHER[0]), "sent", "B's own update"],
    ]
    sign_out(page)
    signed_out(page, server)
    # A again: the kept posts go out once, in order, as A; A's draft went at sign-out.
    sign_in_a(page, server)
    expect_sent(page, texts)
    expect(page.locator("#compose textarea[name=body]")).to_have_value("")
    assert published(api) == [("B's own update", OTHER[0]),
                              *[(text, server.site.username) for text in texts]]


def test_background_sync_sends_nothing_of_a_for_the_next_user(open_browser, page_in, server,
                                                              api, browser_errors):
    texts = ["Sent only as A", "Also only as A"]
    context, page = a_leaves_posts_behind(open_browser, page_in, server, browser_errors, texts)
    sign_in(page, server, *OTHER, then=READER)
    # B's console was open once (B is the outbox's sender now) and is closed.
    console = page_in(context)
    console.goto(server.url + CONSOLE)
    expect(console.locator("#compose")).to_have_attribute("data-ready", "true")
    console.close()
    ran_before = page.evaluate("() => globalThis.LiveblogOutbox.getMeta('flushedAt')")
    page.evaluate("""async () => {
      const registration = await navigator.serviceWorker.ready;
      await registration.sync.register("liveblog-outbox");
    }""")
    wait_until(
        lambda: page.evaluate("() => globalThis.LiveblogOutbox.getMeta('flushedAt')") != ran_before,
        timeout=20, message="the service worker's Background Sync to run",
    )
    assert published(api) == []
    a_id = user_id(server, server.site.username)
    assert outbox_entries(page) == [[a_id, "queued", text] for text in texts]
    sign_out(page)
    signed_out(page, server)
    sign_in_a(page, server)
    expect_sent(page, texts)
    assert published(api) == [(text, server.site.username) for text in texts]


def test_a_session_replaced_under_an_open_console_sends_nothing(open_browser, page_in, server,
                                                                api, browser_errors):
    add_author(server, *OTHER)
    context = open_browser()
    page = page_in(context)
    sign_in_a(page, server)
    wait_for_offline_console(page)
    text = "Written by A in the tunnel"
    with browser_errors.tolerated(offline_errors(server.port) + r"|status of 403 \(Forbidden\)"):
        context.set_offline(True)
        write(page, text)
        # Meanwhile someone else signs in with this browser's cookies (the page does not know).
        login = context.request.get(f"{server.url}/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text()).group(1)
        answer = context.request.post(f"{server.url}/accounts/login/", form={
            "csrfmiddlewaretoken": token, "username": OTHER[0], "password": OTHER[1],
        }, headers={"Referer": f"{server.url}/accounts/login/"})
        assert answer.ok
        context.set_offline(False)
        expect(page.locator("#session-expired")).to_be_visible(timeout=OUTBOX_TIMEOUT_MS)
        expect(page.locator("#outbox li", has_text=text)).to_have_attribute("data-state", "queued")
        # A new page is rendered for B: A's copy of the console and A's sender are gone.
        other = page_in(context)
        other.goto(server.url + CONSOLE)
        expect(other.locator("#compose")).to_have_attribute("data-username", OTHER[0])
        expect(other.locator("#outbox li")).to_have_count(0)
        assert user_caches(other) != [] and all(
            not name.endswith(f"-{page.locator('#compose').get_attribute('data-user-id')}")
            for name in user_caches(other)
        )
    assert published(api) == []


def test_signing_out_can_send_the_unsent_posts_first_or_discard_them(
    open_browser, page_in, server, api, browser_errors
):
    context = open_browser()
    page = page_in(context)
    sign_in_a(page, server)
    wait_for_offline_console(page)
    dialog = page.locator("#sign-out-dialog")
    with browser_errors.tolerated(offline_errors(server.port)):
        context.set_offline(True)
        write(page, "Send me before you go")
        sign_out(page)
        expect(dialog).to_contain_text("1 update has not been sent yet.")
        dialog.get_by_role("button", name="Stay signed in").click()
        expect(dialog).to_be_hidden()
        sign_out(page)
        dialog.get_by_role("button", name="Send now").click()  # still no network
        expect(dialog.locator(".sign-out-error")).to_contain_text("Not sent")
        expect(page.locator("#sign-out")).to_have_count(1)  # still signed in
        context.set_offline(False)
        dialog.get_by_role("button", name="Send now").click()
        signed_out(page, server)
    assert published(api) == [("Send me before you go", server.site.username)]
    sign_in_a(page, server)
    with browser_errors.tolerated(offline_errors(server.port)):
        context.set_offline(True)
        write(page, "Never mind this one")
        sign_out(page)
        dialog.get_by_role("button", name="Discard them").click()
        signed_out(page, server)
        context.set_offline(False)
    sign_in_a(page, server)
    expect(page.locator("#outbox li")).to_have_count(0)
    assert outbox_entries(page) == []
    assert published(api) == [("Send me before you go", server.site.username)]
