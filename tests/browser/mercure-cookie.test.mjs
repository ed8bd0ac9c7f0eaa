// The api-platform admin pattern, in headless Chromium against the real ssehub binary: the
// app's page (its own origin, here a small node:http server on another port of the same
// host) sets the cookie `mercureAuthorization=<token>; Path=/.well-known/mercure` from
// JavaScript, then opens `new EventSource(hubUrl, { withCredentials: true })` on the hub.
// With the cookie a private update arrives; without it only public ones do
// (`--subscribe-auth optional`, Mercure's `anonymous`), or the stream is refused
// (`--subscribe-auth required`); a bad cookie is a 401 in both modes. Each status is the
// browser's own request's, read from Chromium's network events.
//
// Run from the repo root: `node --test tests/browser/` (or `scripts/browser-test.sh`).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import jwt from "jsonwebtoken";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = resolve(ROOT, process.env.SSEHUB_BIN || "target/debug/ssehub");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const WAIT = 10_000;
/** How long a page must stay without an update to show it was not delivered. */
const QUIET = 1_500;
const JWT_KEY = "!ChangeThisMercureHubJWTSecretKey!";
const TOPIC = "https://example.com/books/1";
const PUBLISHER = jwt.sign({ mercure: { publish: ["*"] } }, JWT_KEY, { algorithm: "HS256" });
/** The admin's token, as api-platform mints it: a URI template over the books. */
const ADMIN = jwt.sign({ mercure: { subscribe: ["https://example.com/books/{id}"] } }, JWT_KEY, { algorithm: "HS256" });
const FORGED = jwt.sign({ mercure: { subscribe: ["*"] } }, "not the hub's key, yet 32 bytes long", { algorithm: "HS256" });

let browser;
let app;
let appOrigin;
const hubs = {};

/** Starts ssehub with `args`; resolves with the process and its port. */
function startHub(args) {
  const proc = spawn(BIN, ["--bind", "127.0.0.1:0", "--no-demo", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  return new Promise((res, rej) => {
    const timer = setTimeout(() => { proc.kill("SIGKILL"); rej(new Error(`no port within ${WAIT} ms:\n${log}`)); }, WAIT);
    proc.once("error", (e) => { clearTimeout(timer); rej(e); });
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk) => {
      log += chunk;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); res({ proc, port: Number(m[1]) }); }
    });
  });
}

before(async () => {
  // The app's origin: a blank page, as the admin's would be before its script runs.
  app = createServer((_, res) => { res.writeHead(200, { "Content-Type": "text/html" }); res.end("<!doctype html><title>admin</title>"); });
  await new Promise((res) => app.listen(0, "127.0.0.1", res));
  appOrigin = `http://127.0.0.1:${app.address().port}`;
  const common = ["--jwt-key", JWT_KEY, "--cors-origin", appOrigin];
  hubs.optional = await startHub(common);
  hubs.required = await startHub([...common, "--subscribe-auth", "required"]);
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 30_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  for (const h of Object.values(hubs)) h.proc.kill("SIGKILL");
  app?.close();
});
process.on("exit", () => { for (const h of Object.values(hubs)) { try { h.proc.kill("SIGKILL"); } catch {} } });

/** Publishes a form update on `hub` (private when asked); asserts the id comes back. */
async function publish(hub, id, isPrivate) {
  const form = new URLSearchParams({ topic: TOPIC, id, data: `data of ${id}` });
  if (isPrivate) form.set("private", "on");
  const resp = await fetch(`http://127.0.0.1:${hub.port}/.well-known/mercure`, {
    method: "POST", headers: { Authorization: `Bearer ${PUBLISHER}` }, body: form,
  });
  assert.equal(resp.status, 200);
  assert.equal(await resp.text(), id);
}

/**
 * On a fresh page of the app: sets the cookie from JavaScript (when `cookie` is given),
 * opens the credentialed EventSource on `hub`, and waits until it opens or is refused.
 * Returns the page, its context, the status of the browser's request and the state.
 */
async function openAdmin(hub, cookie, { withCredentials = true } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(appOrigin + "/", { timeout: WAIT });
  const hubUrl = `http://127.0.0.1:${hub.port}/.well-known/mercure?topic=${encodeURIComponent("https://example.com/books/{id}")}`;
  const answered = page.waitForResponse((r) => r.url() === hubUrl, { timeout: WAIT });
  const state = await page.evaluate(async ({ hubUrl, cookie, withCredentials }) => {
    if (cookie !== null) document.cookie = `mercureAuthorization=${cookie}; Path=/.well-known/mercure; SameSite=Strict`;
    window.got = [];
    const es = new EventSource(hubUrl, { withCredentials });
    window.es = es;
    es.onmessage = (e) => window.got.push(e.lastEventId);
    return await new Promise((res) => {
      es.onopen = () => res("open");
      // A refused stream (401) fails the connection: CLOSED, never retried.
      es.onerror = () => { if (es.readyState === EventSource.CLOSED) res("closed"); };
      setTimeout(res, 5000, "no answer");
    });
  }, { hubUrl, cookie, withCredentials });
  const status = (await answered).status();
  // The cookie the page set is scoped to the hub path on this host, every port.
  if (cookie !== null) {
    const sent = await context.cookies(`http://127.0.0.1:${hub.port}/.well-known/mercure`);
    assert.ok(sent.some((c) => c.name === "mercureAuthorization" && c.path === "/.well-known/mercure"), JSON.stringify(sent));
    assert.equal((await context.cookies(`${appOrigin}/`)).length, 0, "the cookie is not sent to the app's other paths");
  }
  return { context, page, status, state };
}

/** Publishes a private and a public update on `hub`; the ids the page received. */
async function deliver(hub, page, tag) {
  const [secret, open] = [`private-${tag}`, `public-${tag}`];
  await publish(hub, secret, true);
  await publish(hub, open, false);
  await page.waitForFunction((id) => window.got.includes(id), open, { timeout: WAIT });
  await page.waitForTimeout(QUIET);
  return { got: await page.evaluate(() => window.got), secret, open };
}

test("the cookie set by the page's JavaScript lets a credentialed EventSource receive a private update", { timeout: 60_000 }, async () => {
  for (const mode of ["optional", "required"]) {
    const { context, page, status, state } = await openAdmin(hubs[mode], ADMIN);
    try {
      assert.equal(status, 200, mode);
      assert.equal(state, "open", mode);
      const { got, secret, open } = await deliver(hubs[mode], page, `cookie-${mode}`);
      assert.deepEqual(got, [secret, open], `${mode}: the private update, then the public one, each once`);
    } finally {
      await context.close();
    }
  }
});

test("without the cookie: public updates only (--subscribe-auth optional), 401 (required)", { timeout: 60_000 }, async () => {
  let { context, page, status, state } = await openAdmin(hubs.optional, null);
  try {
    assert.equal(status, 200);
    assert.equal(state, "open");
    const { got, open } = await deliver(hubs.optional, page, "anonymous");
    assert.deepEqual(got, [open], "an anonymous page gets the public update alone");
  } finally {
    await context.close();
  }
  ({ context, status, state } = await openAdmin(hubs.required, null));
  try {
    assert.equal(status, 401);
    assert.equal(state, "closed");
  } finally {
    await context.close();
  }
});

test("without withCredentials the cookie stays home: a cross-origin page is anonymous", { timeout: 60_000 }, async () => {
  const { context, page, status, state } = await openAdmin(hubs.optional, ADMIN, { withCredentials: false });
  try {
    assert.equal(status, 200);
    assert.equal(state, "open");
    const { got, open } = await deliver(hubs.optional, page, "uncredentialed");
    assert.deepEqual(got, [open]);
  } finally {
    await context.close();
  }
});

test("a bad cookie is a 401 in both modes, never a quiet public-only stream", { timeout: 60_000 }, async () => {
  for (const mode of ["optional", "required"]) {
    const { context, page, status, state } = await openAdmin(hubs[mode], FORGED);
    try {
      assert.equal(status, 401, mode);
      assert.equal(state, "closed", mode);
      await publish(hubs[mode], `after-refusal-${mode}`, false);
      await page.waitForTimeout(QUIET);
      assert.deepEqual(await page.evaluate(() => window.got), [], `${mode}: a refused stream receives nothing`);
    } finally {
      await context.close();
    }
  }
});
