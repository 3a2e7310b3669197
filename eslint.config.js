// One set of lint rules for all the browser code: the page modules, the classic scripts the
// service worker shares, the service worker itself (a Django template) and the browser tests.
// Run with `make lint` (or `node_modules/.bin/eslint .`); `make test` runs it too.

import js from "@eslint/js";
import globals from "globals";

/**
 * templates/pwa/sw.js is a Django template: `{{ … }}` is replaced by a JSON value when /sw.js is
 * served. Lint it as that JavaScript by putting a string literal of the same length in place of
 * each placeholder (and a comment of the same length in place of a `{% … %}` or `{# … #}` tag),
 * so every line and column the linter reports is the template's own.
 */
const djangoTemplate = {
  meta: { name: "django-template" },
  preprocess(text) {
    const literal = (match) => `"${"_".repeat(match.length - 2)}"`;
    const comment = (match) => `/*${" ".repeat(match.length - 4)}*/`;
    return [text.replace(/\{\{.*?\}\}/g, literal).replace(/\{[%#].*?[%#]\}/g, comment)];
  },
  postprocess(messages) {
    return messages.flat();
  },
  supportsAutofix: false,
};

// The house style's few rules beyond the recommended ones (layout is left to review: no
// formatting rules).
const houseRules = {
  eqeqeq: ["error", "always"],
  "no-var": "error",
  "prefer-const": "error",
  "object-shorthand": ["error", "always"],
  "no-implicit-coercion": ["error", { allow: ["!!", "+"] }],
  "no-shadow": "error",
  // A closure may name a variable declared further down (it runs later); the same scope may not.
  "no-use-before-define": ["error", { functions: false, classes: true, variables: false }],
  "no-console": ["error", { allow: ["warn", "error"] }],
  "prefer-template": "error",
  "no-throw-literal": "error",
  "no-unused-vars": ["error", { args: "after-used", caughtErrors: "all" }],
};

export default [
  {
    ignores: ["node_modules/", ".venv/", "var/", "static/liveblog/vendor/", "bench/results/",
      "bench/socketio/node_modules/"],
  },
  js.configs.recommended,
  {
    // ES modules in the page: static/liveblog, the test doubles and the browser tests.
    files: ["static/**/*.js", "e2e/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: houseRules,
  },
  {
    // Classic scripts shared with the service worker (importScripts): no import or export, one
    // global each, defined on globalThis on purpose.
    files: ["static/liveblog/indexeddb.js", "static/liveblog/outbox-core.js", "static/liveblog/photo-cache.js",
      "static/liveblog/push-core.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "script",
      globals: { ...globals.browser, ...globals.serviceworker },
    },
    rules: { ...houseRules, strict: ["error", "function"], "no-implicit-globals": "error" },
  },
  {
    // The embed script runs in other sites' pages as a classic script (it finds its origin from
    // document.currentScript): one function, no globals.
    files: ["static/liveblog/embed.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "script", globals: { ...globals.browser } },
    rules: { ...houseRules, strict: ["error", "function"], "no-implicit-globals": "error" },
  },
  {
    files: ["templates/pwa/sw.js"],
    processor: djangoTemplate,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "script",
      globals: { ...globals.serviceworker },
    },
    rules: houseRules,
  },
  {
    // This file and any other tooling run in Node: the Socket.IO reference server of the bench too.
    files: ["eslint.config.js", "bench/socketio/*.js"],
    languageOptions: { sourceType: "module", globals: { ...globals.node } },
    rules: houseRules,
  },
];
