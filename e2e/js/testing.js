// The browser unit tests' own small harness: `test(name, body)` registers a test, `assert` checks
// values, and `run(name)` runs one test and reports it as plain data. No framework: the runner is
// e2e/test_client_logic.py, which loads a *.test.js module in a fresh browser context per test,
// calls run() for one name and turns the answer into a pytest result.

const registered = new Map();
let assertions = 0;

/** Register a test. Names are unique within a page (each test runs in a page of its own). */
export function test(name, body) {
  if (registered.has(name)) throw new Error(`two tests are named "${name}"`);
  registered.set(name, body);
}

/** The names registered so far, in order (the runner checks them against what it collected). */
export function names() {
  return [...registered.keys()];
}

export class AssertionError extends Error {
  constructor(message, { actual, expected, hide } = {}) {
    super(message);
    this.name = "AssertionError";
    this.actual = actual;
    this.expected = expected;
    // Start the stack at the test's line, not inside this file.
    if (hide && Error.captureStackTrace) Error.captureStackTrace(this, hide);
  }
}

function show(value) {
  if (value === undefined) return "undefined";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (value instanceof Map) return `Map ${show(Object.fromEntries(value))}`;
  if (value instanceof Set) return `Set ${show([...value])}`;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

function isPlainObject(value) {
  if (value === null || typeof value !== "object") return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Where `actual` first differs from `expected` ("" for the whole value), or null if equal.
 *  Plain data compares by content (like Python's `==` on JSON); anything else by identity. */
function difference(actual, expected, path = "") {
  if (Object.is(actual, expected)) return null;
  if (typeof actual === "number" && actual === expected) return null; // 0 and -0
  if (Array.isArray(actual) && Array.isArray(expected)) {
    if (actual.length !== expected.length) return `${path || "the array"} has length ${actual.length}, not ${expected.length}`;
    for (let index = 0; index < actual.length; index += 1) {
      const found = difference(actual[index], expected[index], `${path}[${index}]`);
      if (found !== null) return found;
    }
    return null;
  }
  if (actual instanceof Map && expected instanceof Map) {
    return difference(Object.fromEntries(actual), Object.fromEntries(expected), path);
  }
  if (actual instanceof Set && expected instanceof Set) {
    return difference([...actual].sort(), [...expected].sort(), path);
  }
  if (isPlainObject(actual) && isPlainObject(expected)) {
    const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
    for (const key of keys) {
      if (!(key in actual)) return `${path}.${key} is missing`;
      if (!(key in expected)) return `${path}.${key} is not expected`;
      const found = difference(actual[key], expected[key], `${path}.${key}`);
      if (found !== null) return found;
    }
    return null;
  }
  return `${path || "the value"} is ${show(actual)}, not ${show(expected)}`;
}

function fail(message, detail, fields) {
  throw new AssertionError(message ? `${message}\n${detail}` : detail, fields);
}

export const assert = {
  /** `value` is truthy. */
  ok(value, message = "") {
    assertions += 1;
    if (!value) fail(message, `expected a true value, got ${show(value)}`, { actual: value, hide: assert.ok });
  },

  /** `actual` is `expected` (Object.is, but 0 equals -0). */
  equal(actual, expected, message = "") {
    assertions += 1;
    if (!Object.is(actual, expected) && !(typeof actual === "number" && actual === expected)) {
      fail(message, `expected ${show(expected)}, got ${show(actual)}`, { actual, expected, hide: assert.equal });
    }
  },

  /** `actual` is not `unexpected`. */
  notEqual(actual, unexpected, message = "") {
    assertions += 1;
    if (Object.is(actual, unexpected)) {
      fail(message, `expected anything but ${show(unexpected)}`, { actual, hide: assert.notEqual });
    }
  },

  /** `actual` has the same content as `expected`: arrays, plain objects, Maps and Sets deeply,
   *  with every key on both sides. */
  deepEqual(actual, expected, message = "") {
    assertions += 1;
    const found = difference(actual, expected);
    if (found !== null) {
      fail(message, `${found}\n  expected ${show(expected)}\n  got      ${show(actual)}`,
        { actual, expected, hide: assert.deepEqual });
    }
  },
};

/**
 * Run one registered test. Resolves (never rejects) to
 * {passed, assertions, error: {name, message, stack} | null}; a test that checked nothing fails.
 */
export async function run(name) {
  const body = registered.get(name);
  if (!body) {
    return { passed: false, assertions: 0, error: { name: "Error", message: `no test named "${name}"`, stack: "" } };
  }
  assertions = 0;
  try {
    await body();
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(`threw ${show(error)}`);
    return {
      passed: false, assertions,
      error: { name: failure.name, message: failure.message, stack: failure.stack ?? "" },
    };
  }
  if (assertions === 0) {
    return { passed: false, assertions, error: { name: "Error", message: "the test made no assertion", stack: "" } };
  }
  return { passed: true, assertions, error: null };
}
