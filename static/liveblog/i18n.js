// The browser modules' words in the page's language. The server puts the page language's
// catalog (locale/<lang>/LC_MESSAGES/djangojs.po, compiled) in the page as a JSON script
// element, #i18n-catalog (project/i18n.py): no script to run under the CSP, nothing to fetch,
// and it is cached with the page, so an offline copy speaks its language too. English is the
// source: its catalog is empty and every msgid stands for itself.

const element = globalThis.document?.getElementById("i18n-catalog");
let catalog = element ? JSON.parse(element.textContent) : {};
let lang = globalThis.document?.documentElement.lang || "en";
let plurals = new Intl.PluralRules(lang);

// The catalogs' plural forms in gettext's order (the Plural-Forms formulas of the .po files), as
// CLDR names them (Intl.PluralRules): Arabic has six, Spanish three (a million is "1 000 000
// de …"), the others "one" and "other". A category missing here takes the last form.
const FORM_ORDER = {
  ar: ["zero", "one", "two", "few", "many", "other"],
  es: ["one", "many", "other"],
};
const TWO_FORMS = ["one", "other"];

/** The page's language (`<html lang>`), for Intl. */
export function language() {
  return lang;
}

/** For the unit tests: another catalog and language than the page's. */
export function useCatalog(newCatalog, newLanguage) {
  catalog = newCatalog;
  lang = newLanguage;
  plurals = new Intl.PluralRules(lang);
}

export function gettext(msgid) {
  const text = catalog[msgid];
  return typeof text === "string" && text ? text : msgid;
}

export function ngettext(singular, plural, count) {
  const forms = catalog[singular];
  if (Array.isArray(forms) && forms.length) {
    const order = FORM_ORDER[lang.split("-")[0]] ?? TWO_FORMS;
    const index = order.indexOf(plurals.select(count));
    const text = forms[index < 0 || index >= forms.length ? forms.length - 1 : index];
    if (text) return text;
  }
  return count === 1 ? singular : plural;
}

/** "%(name)s" in `format` replaced by `values.name` (Django's interpolate, named form). */
export function interpolate(format, values) {
  return format.replace(/%\((\w+)\)s/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** `format` split at its "%(name)s" placeholders, each replaced by `values.name` (a string or a
 *  DOM node): for `element.append(...parts(…))`, so that a translation can move a link. */
export function parts(format, values) {
  return format.split(/(%\(\w+\)s)/).filter(Boolean).map((piece) => {
    const name = /^%\((\w+)\)s$/.exec(piece)?.[1];
    return name && name in values ? values[name] : piece;
  });
}

// What the API's error codes (always English, for programs) mean, for people.
const apiErrors = () => ({
  invalid: gettext("the server found something wrong in it"),
  forbidden: gettext("you may not do this"),
  not_found: gettext("it no longer exists"),
  conflict: gettext("it changed meanwhile: reload and try again"),
  too_large: gettext("it is too large"),
  not_authenticated: gettext("sign in again"),
  unavailable: gettext("the server is unavailable: try again shortly"),
});

/**
 * A refusal from the API, for the person who made the request. The server's `detail` is
 * English (the API's text for programs and logs): English pages show it, the most precise; other
 * languages show what the error's code means.
 */
export function apiErrorText(code, detail) {
  if (lang.startsWith("en") && detail) return detail;
  return apiErrors()[code] ?? gettext("the server refused it");
}
