// The browser's catalog (static/liveblog/i18n.js) and the times of feed-view.js in other
// languages: plural forms picked with Intl.PluralRules in the catalogs' order, placeholders, and
// relative times through Intl.RelativeTimeFormat.

import { relativeTime } from "/static/liveblog/feed-view.js";
import { apiErrorText, gettext, interpolate, ngettext, parts, useCatalog } from "/static/liveblog/i18n.js";
import { assert, test } from "./testing.js";

const NEW = "%(count)s new update";
const NEWS = "%(count)s new updates";
const shown = (count) => interpolate(ngettext(NEW, NEWS, count), { count });

test("English is the source: msgids stand for themselves, in both plural forms", () => {
  useCatalog({}, "en");
  assert.equal(gettext("Live"), "Live");
  assert.deepEqual([0, 1, 2, 3].map(shown), ["0 new updates", "1 new update", "2 new updates", "3 new updates"]);
  assert.equal(apiErrorText("invalid", "body is required"), "body is required", "English shows the server's detail");
});

test("Arabic has six plural forms, chosen by CLDR's rules in gettext's order", () => {
  useCatalog({ [NEW]: ["zero", "one", "two", "few %(count)s", "many %(count)s", "other %(count)s"], Live: "مباشر" }, "ar");
  assert.deepEqual([0, 1, 2, 3, 10, 11, 99, 100, 101, 102, 103].map(shown), [
    "zero", "one", "two", "few 3", "few 10", "many 11", "many 99", "other 100", "other 101", "other 102", "few 103",
  ]);
  assert.equal(gettext("Live"), "مباشر");
  assert.equal(gettext("Not in the catalog"), "Not in the catalog");
  assert.equal(apiErrorText("invalid", "body is required"), "the server found something wrong in it",
    "other languages: what the code means (the English detail is for programs)");
});

test("Spanish has a third form for millions; German two", () => {
  useCatalog({ [NEW]: ["%(count)s actualización nueva", "%(count)s de actualizaciones nuevas", "%(count)s actualizaciones nuevas"] }, "es");
  assert.deepEqual([1, 2, 0, 1000000].map(shown), [
    "1 actualización nueva", "2 actualizaciones nuevas", "0 actualizaciones nuevas", "1000000 de actualizaciones nuevas",
  ]);
  useCatalog({ [NEW]: ["%(count)s neue Meldung", "%(count)s neue Meldungen"] }, "de");
  assert.deepEqual([1, 2].map(shown), ["1 neue Meldung", "2 neue Meldungen"]);
});

test("placeholders: text, and DOM nodes a translation may move", () => {
  assert.equal(interpolate("%(a)s and %(b)s, %(missing)s", { a: 1, b: "two" }), "1 and two, %(missing)s");
  const link = document.createElement("a");
  const pieces = parts("نُشرت بوصفها التحديث %(seq)s — %(link)s", { seq: "#4", link });
  assert.deepEqual(pieces.slice(0, 2), ["نُشرت بوصفها التحديث ", "#4"]);
  assert.ok(pieces[3] === link, "the element itself, to append");
});

test("relative times in German, and just now from the catalog", () => {
  useCatalog({ "just now": "gerade eben" }, "de");
  const now = new Date("2024-05-01T12:00:00Z");
  const ago = (seconds) => relativeTime(new Date(now - seconds * 1000), now, "de");
  assert.deepEqual([10, 5 * 60, 2 * 3600].map(ago), ["gerade eben", "vor 5 Min.", "vor 2 Std."]);
  const old = new Date("2023-11-20T08:30:00Z");
  assert.equal(relativeTime(old, now, "de"), new Intl.DateTimeFormat("de", { dateStyle: "medium", timeStyle: "short" }).format(old));
});
