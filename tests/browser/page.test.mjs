// Headless-browser test of the live page (`GET /`) against the real ssehub binary.
//
// Run from the repo root: `node --test tests/browser/` (or `scripts/browser-test.sh`,
// which also installs Chromium and playwright-core and builds the binary).
//
// Environment:
//   SSEHUB_BIN       the server binary (default: target/debug/ssehub under the repo root)
//   CHROMIUM_BIN     the browser (default: /usr/bin/chromium, Debian's package)
//
// Every wait has a deadline, every test a timeout, and every server this file starts is
// killed at the end whatever happens.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import jwt from "jsonwebtoken";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = resolve(ROOT, process.env.SSEHUB_BIN || "target/debug/ssehub");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const OUT = join(ROOT, "test-output", "browser");
const TOKEN = "t";
const WAIT = 10_000; // deadline of any single wait
const TEST_TIMEOUT = 60_000; // deadline of any single test
const JWT_KEY = "browser test key, at least 32 bytes long";

/** A subscriber token for `topics`, minted by jsonwebtoken (not by ssehub). */
const subscriberToken = (topics) => jwt.sign({ mercure: { subscribe: topics } }, JWT_KEY, { algorithm: "HS256" });

const servers = new Set();
let browser;

// ---------- helpers ----------

/** Starts ssehub on 127.0.0.1:0; resolves once it logs the port it listens on. */
function startServer(extraArgs = []) {
  const args = ["--bind", "127.0.0.1:0", "--no-demo", "--publish-token", TOKEN, ...extraArgs];
  const proc = spawn(BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
  const srv = { proc, port: 0, log: "", exited: null };
  servers.add(srv);
  srv.exited = new Promise((res) => proc.once("exit", (code, signal) => res({ code, signal })));
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      rej(new Error(`ssehub did not report its port within ${WAIT} ms; stderr:\n${srv.log}`));
    }, WAIT);
    proc.once("error", (e) => { clearTimeout(timer); rej(new Error(`cannot start ${BIN}: ${e.message}`)); });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      if (!srv.port) rej(new Error(`ssehub exited (${code}) before listening; stderr:\n${srv.log}`));
    });
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk) => {
      srv.log += chunk;
      const m = !srv.port && /listening on 127\.0\.0\.1:(\d+)/.exec(srv.log);
      if (m) {
        srv.port = Number(m[1]);
        clearTimeout(timer);
        res(srv);
      }
    });
  });
}

/** SIGTERM, then SIGKILL if the server has not exited within the deadline. */
async function stopServer(srv) {
  if (srv.proc.exitCode === null && srv.proc.signalCode === null) {
    srv.proc.kill("SIGTERM");
    const t = setTimeout(() => srv.proc.kill("SIGKILL"), WAIT);
    await srv.exited;
    clearTimeout(t);
  }
  servers.delete(srv);
  return srv.exited;
}

/** POST /publish with curl; resolves to the parsed JSON answer. */
function curlPublish(port, body) {
  const args = [
    "-sS", "--max-time", "5", "-X", "POST", `http://127.0.0.1:${port}/publish`,
    "-H", `Authorization: Bearer ${TOKEN}`, "-H", "Content-Type: application/json",
    "-d", JSON.stringify(body),
  ];
  return new Promise((res, rej) => {
    execFile("curl", args, { timeout: WAIT }, (err, stdout, stderr) => {
      if (err) return rej(new Error(`curl failed: ${err.message} ${stderr}`));
      try { res(JSON.parse(stdout)); } catch { rej(new Error(`publish answered non-JSON: ${stdout}`)); }
    });
  });
}

/** Waits until `#state` reads exactly `want`. */
async function waitState(page, want) {
  try {
    await page.waitForFunction(
      (w) => document.getElementById("state")?.textContent === w, want, { timeout: WAIT });
  } catch (e) {
    const got = await page.locator("#state").textContent().catch(() => "?");
    throw new Error(`state never became "${want}" within ${WAIT} ms (it reads "${got}")`);
  }
}

/** Waits for an `.event` in `#events` whose text contains `text`; returns its locator. */
async function waitEvent(page, text) {
  const ev = page.locator("#events .event").filter({ hasText: text }).first();
  await ev.waitFor({ state: "visible", timeout: WAIT });
  return ev;
}

// ---------- lifecycle ----------

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--no-first-run",
    ],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  for (const srv of servers) srv.proc.kill("SIGKILL");
});

// Belt and braces: never leave a server behind, even if the runner is interrupted.
process.on("exit", () => { for (const srv of servers) try { srv.proc.kill("SIGKILL"); } catch {} });

// ---------- same-origin page ----------

test("live page: connects, shows events, stats, publishes, reconnects", { timeout: TEST_TIMEOUT }, async (t) => {
  const srv = await startServer();
  const base = `http://127.0.0.1:${srv.port}`;
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  try {
    await t.test("loads and opens the stream", async () => {
      const resp = await page.goto(base + "/", { timeout: WAIT });
      assert.equal(resp.status(), 200);
      assert.match(resp.headers()["content-type"], /text\/html/);
      await waitState(page, "open");
    });

    await t.test("shows an unnamed event published with curl", async () => {
      const ans = await curlPublish(srv.port, { data: { hello: "browser" } });
      assert.match(ans.id, /^\d+-\d+$/, "ids are <epoch>-<offset> strings");
      assert.ok(ans.delivered_to >= 1, `delivered_to = ${ans.delivered_to}`);
      const ev = await waitEvent(page, '"hello": "browser"'); // pretty-printed JSON
      assert.equal(await ev.locator(".name").textContent(), "message");
      assert.equal(await ev.locator(".id").textContent(), `#${ans.id}`);
    });

    await t.test("shows a tick event (listened to by default)", async () => {
      const ans = await curlPublish(srv.port, { data: { seq: 7, value: 0.73 }, event: "tick" });
      const ev = await waitEvent(page, '"seq": 7');
      assert.equal(await ev.locator(".name").textContent(), "tick");
      assert.equal(await ev.locator(".id").textContent(), `#${ans.id}`);
    });

    await t.test("shows another named event once its name is typed in", async () => {
      await page.fill("#names", "message, tick, greeting");
      await page.click("#sub-form button[type=submit]");
      await curlPublish(srv.port, { data: { hello: "greeting" }, event: "greeting" });
      const ev = await waitEvent(page, '"hello": "greeting"');
      assert.equal(await ev.locator(".name").textContent(), "greeting");
      await waitState(page, "open"); // same topics: listeners added, no reconnect
    });

    await t.test("newest first", async () => {
      const names = await page.locator("#events .event .name").allTextContents();
      assert.deepEqual(names.slice(0, 3), ["greeting", "tick", "message"]);
    });

    await t.test("event text is escaped, never parsed as HTML", async () => {
      const evil = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
      await curlPublish(srv.port, { data: evil });
      const ev = await waitEvent(page, "<b>bold</b>");
      assert.equal(await ev.locator("pre").textContent(), evil);
      assert.equal(await page.locator("#events img, #events b").count(), 0);
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
    });

    await t.test("stats panel shows at least one client", async () => {
      await page.waitForFunction(() => {
        const n = Number((document.getElementById("stat-clients")?.textContent || "").replace(/\D/g, ""));
        return n >= 1;
      }, null, { timeout: WAIT });
      await page.waitForFunction(() => {
        const n = Number((document.getElementById("stat-published")?.textContent || "").replace(/\D/g, ""));
        return n >= 4;
      }, null, { timeout: WAIT });
      const stats = await page.locator("#stats").textContent();
      assert.match(stats, /clients/);
    });

    await t.test("a wrong token shows the error", async () => {
      assert.ok(await page.locator("#pub-send").isDisabled(), "Publish is disabled without a token");
      await page.fill("#token", "wrong");
      await page.click("#pub-send");
      await page.locator("#pub-result.err").filter({ hasText: "401" }).waitFor({ timeout: WAIT });
    });

    await t.test("publishes through the page's own form", async () => {
      await page.fill("#token", TOKEN);
      await page.fill("#pub-event", "fromform");
      await page.fill("#pub-data", '{"via": "the form", "n": 3}');
      await page.click("#pub-send");
      const ev = await waitEvent(page, '"via": "the form"');
      assert.equal(await ev.locator(".name").textContent(), "fromform"); // name auto-added
      await page.locator("#pub-result").filter({ hasText: /published id \d+-\d+, delivered to [1-9]/ })
        .waitFor({ timeout: WAIT });
    });

    await t.test("typing a topic reconnects to that topic only", async () => {
      await page.fill("#topics", "news");
      await page.click("#sub-form button[type=submit]");
      await waitState(page, "open");
      await page.waitForFunction(() => Number(document.getElementById("stat-clients").textContent) >= 1, null, { timeout: WAIT });
      await curlPublish(srv.port, { data: "sports result", topic: "sports" });
      const news = await curlPublish(srv.port, { data: "news flash", topic: "news" });
      assert.ok(news.delivered_to >= 1);
      await waitEvent(page, "news flash");
      assert.equal(await page.locator("#events .event").filter({ hasText: "sports result" }).count(), 0);
      await page.fill("#topics", "");
      await page.click("#sub-form button[type=submit]");
      await waitState(page, "open");
    });

    await t.test("screenshots: laptop, dark, phone (no horizontal scroll at 375 px)", async () => {
      await page.evaluate(() => document.activeElement?.blur());
      // Let the next /stats poll catch up with everything published, and the highlight fade.
      const published = await page.evaluate(async () => (await (await fetch("stats")).json()).events_published);
      await page.waitForFunction((n) => document.getElementById("stat-published").textContent === n.toLocaleString(),
        published, { timeout: WAIT });
      await page.waitForTimeout(1000);
      await page.screenshot({ path: join(OUT, "page.png") });

      const dark = await browser.newContext({ viewport: { width: 1100, height: 900 }, colorScheme: "dark" });
      const phone = await browser.newContext({ viewport: { width: 375, height: 800 } });
      try {
        for (const [ctx, file] of [[dark, "page-dark.png"], [phone, "page-phone.png"]]) {
          const p = await ctx.newPage();
          await p.goto(base + "/", { timeout: WAIT });
          await waitState(p, "open");
          await p.fill("#token", TOKEN);
          await p.evaluate(() => document.activeElement?.blur());
          await curlPublish(srv.port, { data: { sensor: "kitchen", celsius: 21.5, tags: ["a", "b"] }, event: "tick" });
          await waitEvent(p, '"sensor": "kitchen"');
          await curlPublish(srv.port, { data: "a plain text event that is long enough to need wrapping on a narrow phone screen, with a-very-long-unbroken-token-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" });
          await waitEvent(p, "plain text event");
          await p.waitForFunction(() => /\d/.test(document.getElementById("stat-clients").textContent), null, { timeout: WAIT });
          await p.waitForTimeout(1000);
          const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          assert.ok(overflow <= 0, `${file}: page scrolls horizontally by ${overflow}px`);
          await p.screenshot({ path: join(OUT, file), fullPage: file === "page-phone.png" });
        }
      } finally {
        await dark.close();
        await phone.close();
      }
    });

    await t.test("server stopped (SIGTERM): state reads reconnecting", async () => {
      const { code } = await stopServer(srv);
      assert.equal(code, 0, `ssehub exited with ${code}`);
      await waitState(page, "reconnecting");
      await page.waitForTimeout(1500); // failed retries keep it reconnecting, not closed
      assert.equal(await page.locator("#state").textContent(), "reconnecting");
      await page.locator("#stats-note").filter({ hasText: "unavailable" }).waitFor({ timeout: WAIT });
    });

    assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  } finally {
    await context.close();
    await stopServer(srv);
  }
});

// ---------- resets ----------

/** Waits until the reset banner reads `text` (a substring). */
async function waitBanner(page, text) {
  const banner = page.locator("#reset-banner");
  try {
    await banner.filter({ hasText: text }).waitFor({ state: "visible", timeout: WAIT });
  } catch (e) {
    const got = await banner.textContent().catch(() => "?");
    throw new Error(`reset banner never read "${text}" within ${WAIT} ms (it reads "${got}")`);
  }
}

test("live page: a restart shows a reset, then what is new; a foreign id shows one too", { timeout: TEST_TIMEOUT }, async (t) => {
  // A short retry, so that the EventSource comes back soon after the restart.
  const args = ["--retry-ms", "300"];
  let srv = await startServer(args);
  const port = srv.port;
  const base = `http://127.0.0.1:${port}`;
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  try {
    await t.test("a plain connect shows no reset", async () => {
      await page.goto(base + "/", { timeout: WAIT });
      await waitState(page, "open");
      const before = await curlPublish(port, { data: "before the restart" });
      await waitEvent(page, "before the restart");
      assert.match(before.id, /^\d+-1$/);
      assert.ok(await page.locator("#reset-banner").isHidden());
    });

    await t.test("restarted on the same port: reset other-epoch, then the new events", async () => {
      const { code } = await stopServer(srv);
      assert.equal(code, 0);
      await waitState(page, "reconnecting");
      srv = await startServer([...args, "--bind", `127.0.0.1:${port}`]);
      // Published before the page is back: retained, so replayed after the reset.
      const after = await curlPublish(port, { data: "published after the restart" });
      await waitBanner(page, "reset: other-epoch — history restarted, reload your state");
      const reset = await waitEvent(page, '"reason": "other-epoch"');
      assert.equal(await reset.locator(".name").textContent(), "reset");
      assert.equal(await reset.locator(".id").textContent(), "#–", "a reset has no id of its own");
      const ev = await waitEvent(page, "published after the restart");
      assert.equal(await ev.locator(".id").textContent(), `#${after.id}`);
      await waitState(page, "open");
      const live = await curlPublish(port, { data: "live after the reset" });
      const lv = await waitEvent(page, "live after the reset");
      assert.equal(await lv.locator(".id").textContent(), `#${live.id}`);
      // Newest first: live, replayed, reset.
      const texts = await page.locator("#events .event .name").allTextContents();
      assert.deepEqual(texts.slice(0, 3), ["message", "message", "reset"]);
    });

    await t.test("?lastEventId= on the page's URL resumes from it: garbage is reset unknown", async () => {
      const p = await context.newPage();
      p.on("pageerror", (e) => pageErrors.push(e.message));
      await p.goto(base + "/?lastEventId=garbage", { timeout: WAIT });
      await waitBanner(p, "reset: unknown");
      const reset = await waitEvent(p, '"last_event_id": "garbage"');
      assert.equal(await reset.locator(".name").textContent(), "reset");
      await waitState(p, "open");
      await curlPublish(port, { data: "live for the second page" });
      await waitEvent(p, "live for the second page");
      // Nothing was replayed: the reset and the live event only.
      assert.equal(await p.locator("#events .event").count(), 2);
      await p.screenshot({ path: join(OUT, "page-reset.png") });
      await p.close();
    });

    assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  } finally {
    await context.close();
    await stopServer(srv);
  }
});

// ---------- cross-origin ----------

/** The script of a page on another origin: opens an EventSource on ssehub, fetches /stats. */
function crossOriginHtml(ssehubPort) {
  return `<!doctype html><meta charset="utf-8"><title>other origin</title>
<p id="es">connecting</p><p id="stats">pending</p><ul id="got"></ul>
<script>
const es = new EventSource("http://127.0.0.1:${ssehubPort}/stream");
window.errors = 0;
es.onopen = () => { document.getElementById("es").textContent = "open"; };
es.onerror = () => { window.errors++; document.getElementById("es").textContent = "error " + es.readyState; };
es.onmessage = (e) => { const li = document.createElement("li"); li.textContent = e.data; document.getElementById("got").append(li); };
fetch("http://127.0.0.1:${ssehubPort}/stats").then((r) => r.json())
  .then((s) => { document.getElementById("stats").textContent = "ok " + s.clients; })
  .catch(() => { document.getElementById("stats").textContent = "blocked"; });
</script>`;
}

/**
 * Serves a page from another origin (a node http server on its own port) and starts
 * ssehub with `corsArgs(thatOrigin)`. The foreign server binds first, so that its origin
 * is known when ssehub starts; its page is filled in once ssehub's port is known.
 */
async function crossOriginSetup(corsArgs, makeHtml = crossOriginHtml) {
  let html = "not ready";
  const web = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(html);
  });
  await new Promise((res, rej) => { web.once("error", rej); web.listen(0, "127.0.0.1", res); });
  const origin = `http://127.0.0.1:${web.address().port}`;
  try {
    const srv = await startServer(corsArgs(origin));
    html = makeHtml(srv.port);
    return { srv, web, origin };
  } catch (e) {
    web.close();
    throw e;
  }
}

test("cross-origin EventSource without --cors-origin gets nothing", { timeout: TEST_TIMEOUT }, async () => {
  const { srv, web, origin } = await crossOriginSetup(() => []);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(origin + "/", { timeout: WAIT });
    await page.waitForFunction(() => window.errors >= 1, null, { timeout: WAIT });
    await page.locator("#stats").filter({ hasText: "blocked" }).waitFor({ timeout: WAIT });
    await curlPublish(srv.port, { data: "cross-origin secret" });
    await page.waitForTimeout(3000);
    assert.equal(await page.locator("#got li").count(), 0, "a page from another origin read the stream");
    assert.notEqual(await page.locator("#es").textContent(), "open");
  } finally {
    await context.close();
    web.close();
    await stopServer(srv);
  }
});

test("cross-origin EventSource with --cors-origin receives events", { timeout: TEST_TIMEOUT }, async () => {
  const { srv, web, origin } = await crossOriginSetup((o) => ["--cors-origin", o]);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(origin + "/", { timeout: WAIT });
    await page.locator("#es").filter({ hasText: /^open$/ }).waitFor({ timeout: WAIT })
      .catch(async () => {
        throw new Error(`cross-origin EventSource did not open (reads "${await page.locator("#es").textContent()}"); ` +
          "does /stream send Access-Control-Allow-Origin for the allowed origin?");
      });
    const ans = await curlPublish(srv.port, { data: "hello other origin" });
    assert.ok(ans.delivered_to >= 1);
    await page.locator("#got li").filter({ hasText: "hello other origin" }).waitFor({ timeout: WAIT });
    await page.locator("#stats").filter({ hasText: /^ok \d+$/ }).waitFor({ timeout: WAIT })
      .catch(async () => {
        throw new Error(`cross-origin fetch of /stats failed (reads "${await page.locator("#stats").textContent()}")`);
      });
  } finally {
    await context.close();
    web.close();
    await stopServer(srv);
  }
});

// ---------- private topics ----------

test("private events: a page with the token cookie receives them, a page without does not", { timeout: TEST_TIMEOUT }, async () => {
  const srv = await startServer(["--jwt-key", JWT_KEY]);
  const base = `http://127.0.0.1:${srv.port}`;
  const withToken = await browser.newContext();
  const without = await browser.newContext();
  const refused = await browser.newContext();
  try {
    const a = await withToken.newPage();
    const pageErrors = [];
    a.on("pageerror", (e) => pageErrors.push(e.message));
    await a.goto(base + "/", { timeout: WAIT });
    await waitState(a, "open");
    await a.fill("#sub-token", subscriberToken(["secret/*"]));
    await a.click("#sub-token-apply");
    await waitState(a, "open");
    const cookies = await withToken.cookies(base);
    assert.ok(cookies.some((c) => c.name === "mercureAuthorization" && c.sameSite === "Strict"), JSON.stringify(cookies));

    const b = await without.newPage();
    await b.goto(base + "/", { timeout: WAIT });
    await waitState(b, "open");
    await a.waitForFunction(() => Number(document.getElementById("stat-clients").textContent) >= 2, null, { timeout: WAIT });

    const secret = await curlPublish(srv.port, { data: "the private one", topic: "secret/1", private: true });
    assert.equal(secret.delivered_to, 1, "only the page with the token");
    await curlPublish(srv.port, { data: "the public one", topic: "secret/1" });
    await waitEvent(a, "the private one");
    await waitEvent(a, "the public one");
    await waitEvent(b, "the public one");
    assert.equal(await b.locator("#events .event").filter({ hasText: "the private one" }).count(), 0,
      "a page without the token received a private event");

    // The page's own form publishes a private event (publish token as usual).
    await a.fill("#token", TOKEN);
    await a.fill("#pub-topic", "secret/2");
    await a.fill("#pub-data", "private from the form");
    await a.check("#pub-private");
    await a.click("#pub-send");
    await waitEvent(a, "private from the form");
    await a.locator("#pub-result").filter({ hasText: /delivered to 1$/ }).waitFor({ timeout: WAIT });
    await b.waitForTimeout(500);
    assert.equal(await b.locator("#events .event").filter({ hasText: "private from the form" }).count(), 0);

    // A bad token: the stream is refused, and the page says why.
    const c = await refused.newPage();
    await c.goto(base + "/", { timeout: WAIT });
    await waitState(c, "open");
    await c.fill("#sub-token", jwt.sign({ mercure: { subscribe: ["*"] } }, "not the key, but 32 bytes or more", { algorithm: "HS256" }));
    await c.click("#sub-token-apply");
    await waitState(c, "closed");
    await c.locator("#auth-result").filter({ hasText: "401 invalid token: bad signature" }).waitFor({ timeout: WAIT });
    await c.screenshot({ path: join(OUT, "page-refused-token.png") });
    // Removing the token reconnects without it.
    await c.fill("#sub-token", "");
    await c.click("#sub-token-apply");
    await waitState(c, "open");
    assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  } finally {
    await withToken.close();
    await without.close();
    await refused.close();
    await stopServer(srv);
  }
});

/** A page on another origin whose EventSource sends credentials (the token cookie). */
function credentialedHtml(ssehubPort) {
  return `<!doctype html><meta charset="utf-8"><title>other origin, with credentials</title>
<p id="es">connecting</p><ul id="got"></ul>
<script>
const es = new EventSource("http://127.0.0.1:${ssehubPort}/stream", { withCredentials: true });
window.errors = 0;
es.onopen = () => { document.getElementById("es").textContent = "open"; };
es.onerror = () => { window.errors++; document.getElementById("es").textContent = "error " + es.readyState; };
es.onmessage = (e) => { const li = document.createElement("li"); li.textContent = e.data; document.getElementById("got").append(li); };
</script>`;
}

/** Opens the credentialed page of `setup` with the token cookie set for ssehub's origin. */
async function openCredentialed(setup) {
  const context = await browser.newContext();
  await context.addCookies([{
    name: "mercureAuthorization", value: subscriberToken(["*"]),
    url: `http://127.0.0.1:${setup.srv.port}`, sameSite: "Strict",
  }]);
  const page = await context.newPage();
  await page.goto(setup.origin + "/", { timeout: WAIT });
  return { context, page };
}

test("cross-origin EventSource with credentials gets private events when --cors-origin names the origin", { timeout: TEST_TIMEOUT }, async () => {
  const setup = await crossOriginSetup((o) => ["--jwt-key", JWT_KEY, "--cors-origin", o], credentialedHtml);
  const { context, page } = await openCredentialed(setup);
  try {
    await page.locator("#es").filter({ hasText: /^open$/ }).waitFor({ timeout: WAIT })
      .catch(async () => {
        throw new Error(`credentialed EventSource did not open (reads "${await page.locator("#es").textContent()}"); ` +
          "does /stream send Access-Control-Allow-Credentials for the named origin?");
      });
    const ans = await curlPublish(setup.srv.port, { data: "private, cross-origin", private: true });
    assert.equal(ans.delivered_to, 1, "the cookie's token reached the hub");
    await page.locator("#got li").filter({ hasText: "private, cross-origin" }).waitFor({ timeout: WAIT });
  } finally {
    await context.close();
    setup.web.close();
    await stopServer(setup.srv);
  }
});

test("cross-origin EventSource with credentials is refused by the browser with --cors-origin *", { timeout: TEST_TIMEOUT }, async () => {
  const setup = await crossOriginSetup(() => ["--jwt-key", JWT_KEY, "--cors-origin", "*"], credentialedHtml);
  const { context, page } = await openCredentialed(setup);
  try {
    await page.waitForFunction(() => window.errors >= 1, null, { timeout: WAIT });
    await curlPublish(setup.srv.port, { data: "private, star", private: true });
    await curlPublish(setup.srv.port, { data: "public, star" });
    await page.waitForTimeout(2000);
    assert.equal(await page.locator("#got li").count(), 0, "a credentialed read succeeded with Allow-Origin *");
    assert.notEqual(await page.locator("#es").textContent(), "open");
  } finally {
    await context.close();
    setup.web.close();
    await stopServer(setup.srv);
  }
});
