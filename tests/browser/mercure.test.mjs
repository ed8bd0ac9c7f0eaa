// Mercure's conformance cases, in headless Chromium against the real ssehub binary: a
// page opens `EventSource` on the hub path with 0.x (`topic`) and 1.0 (`match`,
// `match_urlpattern`) selectors, publishes with `fetch` and a form body carrying a
// publisher id, and checks whether the update arrives, with `lastEventId` equal to that
// id. The cases are written from dunglas/mercure's `conformance-tests/mercure.spec.ts`
// (0.x and 1.0 versions): the facts, not its code.
//
// Run from the repo root: `node --test tests/browser/` (or `scripts/browser-test.sh`).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import jwt from "jsonwebtoken";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = resolve(ROOT, process.env.SSEHUB_BIN || "target/debug/ssehub");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const WAIT = 10_000;
const JWT_KEY = "!ChangeThisMercureHubJWTSecretKey!";
// A 0.x publisher token minted by jsonwebtoken: every topic.
const PUBLISHER = jwt.sign({ mercure: { publish: ["*"], subscribe: ["*"] } }, JWT_KEY, { algorithm: "HS256" });

let server;
let browser;
let base;

function startServer() {
  const args = ["--bind", "127.0.0.1:0", "--no-demo", "--jwt-key", JWT_KEY];
  const proc = spawn(BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
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
  server = await startServer();
  base = `http://127.0.0.1:${server.port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 30_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  server?.proc.kill("SIGKILL");
});
process.on("exit", () => { try { server?.proc.kill("SIGKILL"); } catch {} });

const rnd = () => randomBytes(20).toString("hex");
const r = Array.from({ length: 5 }, rnd);

// name, the update's topics, the subscriber's selectors as [param, value], received?, private?
const CASES = [
  ["0.x raw string", [r[0]], [["topic", r[0]]], true],
  ["0.x multiple topics", [rnd(), r[1]], [["topic", r[1]]], true],
  ["0.x multiple topic selectors", [r[2]], [["topic", "foo"], ["topic", r[2]]], true],
  ["0.x URI", [`https://example.net/foo/${r[3]}`], [["topic", `https://example.net/foo/${r[3]}`]], true],
  ["0.x URI template", [`https://example.net/foo/${r[4]}`], [["topic", "https://example.net/foo/{random}"]], true],
  ["0.x nonmatching raw string", ["will-not-match}"], [["topic", "another-name"]], false],
  ["0.x nonmatching URI", ["https://example.net/foo/will-not-match}"], [["topic", "https://example.net/foo/another-name"]], false],
  ["0.x nonmatching URI template", ["https://example.net/foo/will-not-match}"], [["topic", "https://example.net/bar/{var}"]], false],
  ["0.x private raw string", [r[0]], [["topic", r[0]]], false, true],
  ["0.x private URI template", [`https://example.net/foo/${r[4]}`], [["topic", "https://example.net/foo/{random}"]], false, true],
  ["1.0 raw string", [r[0]], [["match", r[0]]], true],
  ["1.0 multiple topic selectors", [r[2]], [["match", "foo"], ["match", r[2]]], true],
  ["1.0 URI", [`https://example.net/foo/${r[3]}`], [["match", `https://example.net/foo/${r[3]}`]], true],
  ["1.0 URL pattern", [`https://example.net/foo/${r[4]}`], [["match_urlpattern", "https://example.net/foo/:random"]], true],
  ["1.0 nonmatching raw string", ["will-not-match"], [["match", "another-name"]], false],
  ["1.0 nonmatching URL pattern", ["https://example.net/foo/will-not-match"], [["match_urlpattern", "https://example.net/bar/:var"]], false],
  ["1.0 private URL pattern", [`https://example.net/foo/${r[4]}`], [["match_urlpattern", "https://example.net/foo/:random"]], false, true],
];

for (const [name, updateTopics, selectors, mustBeReceived, isPrivate] of CASES) {
  test(name, { timeout: 30_000 }, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(base + "/", { timeout: WAIT });
      const updateID = `id-${name}-${rnd()}`;
      const got = await page.evaluate(async ({ updateTopics, selectors, isPrivate, updateID, name, token }) => {
        const url = new URL("/.well-known/mercure", window.origin);
        for (const [param, value] of selectors) url.searchParams.append(param, value);
        const form = new URLSearchParams();
        for (const t of updateTopics) form.append("topic", t);
        form.set("id", updateID);
        form.set("data", `data for\n\n        ${name}`);
        if (isPrivate) form.set("private", "on");
        const es = new EventSource(url);
        await new Promise((res, rej) => { es.onopen = res; setTimeout(() => rej(new Error("EventSource never opened")), 5000); });
        const received = new Promise((res) => {
          es.onmessage = (e) => {
            if (e.lastEventId === updateID && e.data === form.get("data")) res(true);
          };
          setTimeout(res, 2000, false);
        });
        const resp = await fetch("/.well-known/mercure", {
          method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form,
        });
        const body = await resp.text();
        const ok = await received;
        es.close();
        return { received: ok, status: resp.status, contentType: resp.headers.get("Content-Type"), body };
      }, { updateTopics, selectors, isPrivate, updateID, name, token: PUBLISHER });
      assert.equal(got.status, 200, got.body);
      assert.match(got.contentType, /^text\/plain(?:$|;.*)/);
      assert.equal(got.body, updateID, "the answer is the publisher's id");
      assert.equal(got.received, mustBeReceived);
    } finally {
      await context.close();
    }
  });
}
