"""The reader's language on the server: the catalogs are complete and current, pages come in the
language Accept-Language asks for unless the switch chose another, Arabic is right to left, the
browser's catalog is in the page, and caches keep the languages apart."""

import json
import re

import pytest
from django.test import Client

from liveblog.management.commands import liveblog_messages

READER_URL = "/liveblog/final/"
EMBED_URL = "/liveblog/final/embed/"
CONSOLE_URL = "/liveblog/final/write/"
CATALOG = re.compile(r'<script id="i18n-catalog" type="application/json">(.*?)</script>', re.S)


def html_tag(html: str) -> str:
    return re.search(r"<html[^>]*>", html).group(0)


def js_catalog(html: str) -> dict:
    return json.loads(CATALOG.search(html).group(1))


def test_every_string_is_translated_and_the_catalogs_are_current():
    """makemessages finds nothing new or gone (the committed .po files are current: a string
    added to a template or a module and not yet translated fails here), and es, de and ar have
    every string translated, none fuzzy. English is the source (the msgids)."""
    paths = liveblog_messages.catalog_paths()
    before = {path: path.read_bytes() for path in paths}
    try:
        changes = liveblog_messages.make_messages()
    finally:  # a check: the working tree is left as it was
        for path, content in before.items():
            path.write_bytes(content)
    stale = [f"{path}: {'new' if new else 'gone'}: {sorted(new or gone)}"
             for path, (new, gone) in changes.items() if new or gone]
    assert not stale, "run `make messages` and translate:\n" + "\n".join(stale)
    problems = [problem for path in paths for problem in liveblog_messages.problems(path)]
    assert not problems, "\n".join(problems)
    assert len(paths) == 6 and all(path.exists() for path in paths)


@pytest.mark.django_db
@pytest.mark.parametrize(("accept", "lang", "direction", "heading", "switch"), [
    (None, "en", "ltr", "Live blogs", "Change language"),
    ("es-ES,es;q=0.9,en;q=0.5", "es", "ltr", "Blogs en directo", "Cambiar idioma"),
    ("de-DE,de;q=0.9", "de", "ltr", "Liveblogs", "Sprache wechseln"),
    ("ar-EG,ar;q=0.9", "ar", "rtl", "المدونات المباشرة", "تغيير اللغة"),
    ("fr-FR,fr;q=0.9", "en", "ltr", "Live blogs", "Change language"),  # not one of ours
])
def test_pages_come_in_the_language_the_browser_asks_for(
    client, accept, lang, direction, heading, switch
):
    headers = {"HTTP_ACCEPT_LANGUAGE": accept} if accept else {}
    response = client.get("/", **headers)
    html = response.content.decode()
    assert html_tag(html) == f'<html lang="{lang}" dir="{direction}">'
    assert f"<h1>{heading}</h1>" in html
    assert switch in html
    assert response["Content-Language"] == lang
    assert f'<option value="{lang}" lang="{lang}" selected>' in html


@pytest.mark.django_db
def test_reader_console_embed_and_sign_in_are_translated(blog, author, make_post):
    make_post("Kick-off", key_event=True)
    reader = Client(HTTP_ACCEPT_LANGUAGE="de").get(READER_URL).content.decode()
    assert "Wichtige Ereignisse" in reader and "Verbinden…" in reader
    assert ">Wichtiges Ereignis</span>" in reader
    embed = Client(HTTP_ACCEPT_LANGUAGE="ar").get(EMBED_URL).content.decode()
    assert 'dir="rtl"' in html_tag(embed) and "افتح المدونة المباشرة" in embed
    assert "language-switch" not in embed  # another site's page: no chrome of ours
    sign_in = Client(HTTP_ACCEPT_LANGUAGE="es").get("/accounts/login/").content.decode()
    assert "<h1>Iniciar sesión</h1>" in sign_in and ">Contraseña</label>" in sign_in
    console_client = Client(HTTP_ACCEPT_LANGUAGE="es")
    console_client.force_login(author)
    console = console_client.get(CONSOLE_URL).content.decode()
    assert "Bandeja de salida" in console and "Publicar actualización" in console
    missing = Client(HTTP_ACCEPT_LANGUAGE="es").get("/no-such-page/")
    assert missing.status_code == 404 and "No encontrado" in missing.content.decode()


@pytest.mark.django_db
def test_the_switch_remembers_a_choice_that_overrides_the_browser(client):
    response = client.post("/i18n/setlang/", {"language": "ar", "next": "/"},
                           HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 302 and response["Location"] == "/"
    cookie = response.cookies["django_language"]
    assert cookie.value == "ar" and cookie["max-age"] == 365 * 24 * 3600
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert html_tag(html) == '<html lang="ar" dir="rtl">'
    # Posted from any cached page, which carries no CSRF token.
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/i18n/setlang/", {"language": "de", "next": "/"}).status_code == 302


@pytest.mark.django_db
def test_the_browser_catalog_is_in_the_page(blog):
    english = js_catalog(Client().get(READER_URL).content.decode())
    assert english == {}  # the source language: msgids stand for themselves
    arabic = js_catalog(Client(HTTP_ACCEPT_LANGUAGE="ar").get(READER_URL).content.decode())
    assert arabic["Live"] == "مباشر"
    assert len(arabic["%(count)s new update"]) == 6  # zero, one, two, few, many, other
    spanish = js_catalog(Client(HTTP_ACCEPT_LANGUAGE="es").get(READER_URL).content.decode())
    assert spanish["%(count)s new update"] == [
        "%(count)s actualización nueva", "%(count)s de actualizaciones nuevas",
        "%(count)s actualizaciones nuevas",
    ]
    assert "Connecting…" in spanish and "Change language" not in spanish  # the JS domain only


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", READER_URL, EMBED_URL, "/offline/"])
def test_pages_vary_on_the_language_headers(blog, url):
    """A shared cache (or the browser's) must not hand one reader's language to another."""
    response = Client().get(url)
    vary = {part.strip().lower() for part in response["Vary"].split(",")}
    assert {"accept-language", "cookie"} <= vary


@pytest.mark.django_db
def test_what_is_not_translated_does_not_vary_on_language(blog, make_post):
    """The API, the Atom feed and photos are the same in every language: shared caches keep one
    copy (the feed's ETag still answers 304)."""
    make_post("Kick-off")
    for url in ("/api/liveblog/final/posts", "/liveblog/final/feed/"):
        response = Client(HTTP_ACCEPT_LANGUAGE="de").get(url)
        assert response.status_code == 200
        assert "accept-language" not in response.get("Vary", "").lower(), url
        assert "Content-Language" not in response, url

