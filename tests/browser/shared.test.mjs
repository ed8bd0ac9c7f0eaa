// ssehub.js in headless Chromium (#24): one stream shared by twelve tabs, a leader handover
// with no gap and no duplicate, tabs on topics that another tab's stream covers sharing it
// (each keeps its own events by the ?tagged=1 topic tags), the fallback without Web Locks, a cookie token refreshed on
// token-expiring with no private event missed, an expired cookie refused (401), and the live
// page's charts (the screenshot in README, docs/screenshot.png, is written here).
//
// Run by scripts/browser-test.sh (SSEHUB_BIN, CHROMIUM_BIN as in page.test.mjs).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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
const WAIT = 10_000;
const TEST_TIMEOUT = 40_000;
const JWT_KEY = "browser test key, at least 32 bytes long";
const now = () => Math.floor(Date.now() / 1000);

const servers = new Set();
let browser;

function startServer(extraArgs = []) {
  const args = ["--bind", "127.0.0.1:0", "--no-demo", "--publish-token", TOKEN, ...extraArgs];
  const proc = spawn(BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
  const srv = { proc, port: 0, log: "" };
  servers.add(srv);
  return new Promise((res, rej) => {
    const timer = setTimeout(() => { proc.kill("SIGKILL"); rej(new Error(`no port within ${WAIT} ms:\n${srv.log}`)); }, WAIT);
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk) => {
      srv.log += chunk;
      const m = !srv.port && /listening on 127\.0\.0\.1:(\d+)/.exec(srv.log);
      if (m) { srv.port = Number(m[1]); clearTimeout(timer); res(srv); }
    });
    proc.once("exit", (code) => { clearTimeout(timer); if (!srv.port) rej(new Error(`exited ${code}:\n${srv.log}`)); });
  });
}

function stopServer(srv) {
  srv.proc.kill("SIGKILL");
  servers.delete(srv);
}

async function publish(port, body) {
  const r = await fetch(`http://127.0.0.1:${port}/publish`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return JSON.parse(text);
}

async function metric(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return Number(line.split(" ")[1]);
}

async function until(what, cond, within = WAIT) {
  const end = Date.now() + within;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`${what}: not within ${within} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// A page on the hub's origin (routed by the test, so the origin is the hub's) that opens an
// SsehubSource and records every event it sees.
const HARNESS = `<!doctype html><meta charset="utf-8"><script src="/ssehub.js"></script><script>
  window.got = []; window.opens = 0;
  const q = new URLSearchParams(location.search);
  window.src = new SsehubSource(q.get("url") || "/stream",
    { refresh: window.refreshToken ? () => window.refreshToken() : undefined });
  const keep = (e) => got.push({ type: e.type, id: e.lastEventId, data: e.data, topics: e.topics, private: e.private });
  src.onmessage = keep;
  src.addEventListener("tick", keep);
  src.addEventListener("token-expiring", keep);
  src.addEventListener("reset", keep);
  src.onopen = () => { opens++; };
</script>`;

async function harnessContext(port, init) {
  const context = await browser.newContext();
  await context.route(`http://127.0.0.1:${port}/harness.html*`, (r) =>
    r.fulfill({ contentType: "text/html", body: HARNESS }));
  if (init) await context.addInitScript(init);
  return context;
}

const events = (page) => page.evaluate(() => window.got.filter((e) => e.type === "message"));

before(async () => {
  mkdirSync(OUT, { recursive: true });
  mkdirSync(join(ROOT, "docs"), { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 30_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  for (const srv of servers) srv.proc.kill("SIGKILL");
});
process.on("exit", () => { for (const srv of servers) try { srv.proc.kill("SIGKILL"); } catch {} });

test("twelve tabs share one stream; the leader's close hands over with no gap", { timeout: TEST_TIMEOUT }, async () => {
  const srv = await startServer();
  const base = `http://127.0.0.1:${srv.port}`;
  const context = await harnessContext(srv.port);
  const streams = [];
  context.on("response", (r) => { if (r.url().includes("/stream")) streams.push(r); });
  try {
    const pages = [];
    for (let i = 0; i < 12; i++) {
      const p = await context.newPage();
      await p.goto(base + "/harness.html");
      pages.push(p);
    }
    for (const p of pages) await p.waitForFunction(() => window.src.readyState === 1, null, { timeout: WAIT });
    assert.deepEqual(await Promise.all(pages.map((p) => p.evaluate(() => window.src.shared))), Array(12).fill(true));
    assert.equal(await metric(srv.port, "ssehub_clients"), 1, "one stream for twelve tabs");
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push((await publish(srv.port, { data: `e${i}` })).id);
    for (const p of pages) await until("20 events in every tab", async () => (await events(p)).length >= 20);
    for (const p of pages) assert.deepEqual((await events(p)).map((e) => e.id), ids, "same events, same order");

    const leads = await Promise.all(pages.map((p) => p.evaluate(() => window.src.leader)));
    assert.equal(leads.filter(Boolean).length, 1, "one leader");
    const leader = pages[leads.indexOf(true)];
    const rest = pages.filter((p) => p !== leader);
    const before = streams.length;
    await leader.close();
    const closed = Date.now();
    // Published while no tab holds a stream: the next leader resumes from the group's last id.
    for (let i = 20; i < 25; i++) ids.push((await publish(srv.port, { data: `e${i}` })).id);
    await until("a follower leads", async () =>
      (await Promise.all(rest.map((p) => p.evaluate(() => window.src.leader)))).some(Boolean), 1000);
    const took = Date.now() - closed;
    assert.ok(took <= 1000, `took ${took} ms`);
    await until("the new stream's head", () => streams.length > before);
    assert.equal(streams[streams.length - 1].headers()["sse-resume"], "continue");
    for (let i = 25; i < 30; i++) ids.push((await publish(srv.port, { data: `e${i}` })).id);
    for (const p of rest) await until("30 events in every tab", async () => (await events(p)).length >= 30);
    await new Promise((r) => setTimeout(r, 300)); // a duplicate would show by now
    for (const p of rest) assert.deepEqual((await events(p)).map((e) => e.id), ids, "no gap, no duplicate");
    await until("one client again", async () => (await metric(srv.port, "ssehub_clients")) === 1);
    console.log(`handover took ${took} ms`);
  } finally {
    await context.close();
    stopServer(srv);
  }
});

test("tabs whose topics another tab's stream covers share it, each gets its own events; others hold their own", { timeout: 60_000 }, async () => {
  // A short retry, so that the streams come back soon after the restart at the end.
  let srv = await startServer(["--retry-ms", "300"]);
  const base = `http://127.0.0.1:${srv.port}`;
  const context = await harnessContext(srv.port);
  const streams = [];
  context.on("response", (r) => { if (r.url().includes("/stream")) streams.push(r); });
  const open = async (url) => {
    const p = await context.newPage();
    await p.goto(base + "/harness.html?url=" + encodeURIComponent(url));
    await p.waitForFunction(() => window.src.readyState === 1, null, { timeout: WAIT });
    return p;
  };
  const state = (p) => p.evaluate(() => ({ leader: window.src.leader, shared: window.src.shared, stream: window.src.stream }));
  const kept = (p) => p.evaluate(() => window.got.filter((e) => e.type === "message" || e.type === "tick")
    .map((e) => ({ id: e.id, type: e.type, data: e.data, topics: e.topics })));
  try {
    const wide = await open("/stream?topic=b&topic=a");
    const narrow = await open("/stream?topic=a");
    const other = await open("/stream?topic=c");
    const [w, n, o] = await Promise.all([wide, narrow, other].map(state));
    assert.equal(w.leader, true);
    assert.equal(n.leader, false, "the tab on a joins the stream on a and b");
    assert.equal(new URL(n.stream).search, "?topic=a&topic=b");
    assert.equal(o.leader, true, "c is not covered: its own stream");
    assert.equal(await metric(srv.port, "ssehub_clients"), 2, "one stream for a and b (and a), one for c");

    // Events on a, b, c and both a and b (b first), some named: each tab gets exactly its own, in order.
    const plan = [["a"], ["b"], ["c"], ["b", "a"], ["a"], ["c"], ["b"], ["a", "c"]];
    const sent = [];
    const publishPlan = async (round) => {
      for (const [i, topics] of plan.entries()) {
        const body = { data: `${round}-${i}`, topic: topics.length === 1 ? topics[0] : topics };
        if (i % 3 === 0) body.event = "tick";
        const { id } = await publish(srv.port, body);
        sent.push({ id, type: body.event || "message", data: body.data, topics });
      }
    };
    await publishPlan(0);
    const want = (tab) => sent.filter((e) => e.topics.some((t) => tab.includes(t)));
    const check = async (page, tab) => {
      await until(`${tab} has its events`, async () => (await kept(page)).length >= want(tab).length);
      await new Promise((r) => setTimeout(r, 200)); // an extra one would show by now
      assert.deepEqual(await kept(page), want(tab), `exactly the events on ${tab}, in order`);
    };
    await check(wide, ["a", "b"]);
    await check(narrow, ["a"]);
    await check(other, ["c"]);

    // The wide tab closes: the narrow one leads and opens the group's stream (a and b) from
    // the group's last id, so nothing on a is missed or repeated.
    const before = streams.length;
    await wide.close();
    await publishPlan(1);
    await until("the narrow tab leads", async () => (await state(narrow)).leader, 2000);
    await until("the new stream's head", () => streams.length > before);
    const head = streams[streams.length - 1];
    assert.equal(head.headers()["sse-resume"], "continue");
    assert.match(head.url(), /topic=a&topic=b/);
    await check(narrow, ["a"]);
    await check(other, ["c"]);
    await until("two clients again", async () => (await metric(srv.port, "ssehub_clients")) === 2);

    // A tab on a and b joins the group the narrow tab leads; after a restart the leader
    // resumes from the group's last id, gets a reset (other epoch), and every tab of the
    // group sees it, then its own new events.
    const wide2 = await open("/stream?topic=a&topic=b");
    assert.equal((await state(wide2)).leader, false);
    assert.equal(await metric(srv.port, "ssehub_clients"), 2);
    const port = srv.port;
    srv.proc.kill("SIGTERM");
    await new Promise((r) => srv.proc.once("exit", r));
    servers.delete(srv);
    srv = await startServer(["--retry-ms", "300", "--bind", `127.0.0.1:${port}`]);
    const resets = (p) => p.evaluate(() => window.got.filter((e) => e.type === "reset").map((e) => JSON.parse(e.data).reason));
    for (const p of [narrow, wide2, other]) {
      await until("the reset in every tab", async () => (await resets(p)).length === 1);
      assert.deepEqual(await resets(p), ["other-epoch"]);
    }
    sent.length = 0;
    await publishPlan(2);
    const fresh = async (page, tab) => {
      const w = want(tab);
      await until(`${tab} has its new events`, async () => (await kept(page)).slice(-w.length).map((e) => e.id).join() === w.map((e) => e.id).join());
    };
    await fresh(narrow, ["a"]);
    await fresh(wide2, ["a", "b"]);
    await fresh(other, ["c"]);
    assert.deepEqual(await kept(wide2), want(["a", "b"]), "the joining tab: only what came after it joined");
  } finally {
    await context.close();
    stopServer(srv);
  }
});

test("without Web Locks every tab holds its own stream, and says so", { timeout: TEST_TIMEOUT }, async () => {
  const srv = await startServer();
  const context = await harnessContext(srv.port, () => { delete Navigator.prototype.locks; });
  try {
    const pages = [await context.newPage(), await context.newPage()];
    for (const p of pages) await p.goto(`http://127.0.0.1:${srv.port}/harness.html`);
    for (const p of pages) await p.waitForFunction(() => window.src.readyState === 1, null, { timeout: WAIT });
    for (const p of pages) assert.deepEqual(await p.evaluate(() => [window.src.shared, window.src.leader]), [false, true]);
    assert.equal(await metric(srv.port, "ssehub_clients"), 2);
    const { id } = await publish(srv.port, { data: "x" });
    for (const p of pages) await until("the event", async () => (await events(p)).some((e) => e.id === id));
  } finally {
    await context.close();
    stopServer(srv);
  }
});

test("token-expiring: refresh() sets a fresh cookie, the stream reconnects, no private event is missed", { timeout: TEST_TIMEOUT }, async () => {
  const srv = await startServer(["--jwt-key", JWT_KEY, "--token-notice", "3"]);
  const base = `http://127.0.0.1:${srv.port}`;
  const cookie = (exp) => ({
    name: "mercureAuthorization", url: base,
    value: jwt.sign({ mercure: { subscribe: ["p"] }, exp }, JWT_KEY, { algorithm: "HS256" }),
  });
  const context = await harnessContext(srv.port);
  let refreshed = 0;
  await context.exposeFunction("refreshToken", async () => { refreshed++; await context.addCookies([cookie(now() + 60)]); });
  await context.addCookies([cookie(now() + 6)]);
  try {
    const pages = [await context.newPage(), await context.newPage()];
    for (const p of pages) await p.goto(base + "/harness.html?url=" + encodeURIComponent("/stream?topic=p"));
    for (const p of pages) await p.waitForFunction(() => window.src.readyState === 1, null, { timeout: WAIT });
    const sent = [];
    for (let i = 0; i < 32; i++) {
      sent.push((await publish(srv.port, { data: `p${i}`, topic: "p", private: true })).id);
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const p of pages) await until("every private event", async () => (await events(p)).length >= 32);
    for (const p of pages) {
      const got = await p.evaluate(() => window.got);
      assert.ok(got.some((e) => e.type === "token-expiring"), "token-expiring reached every tab");
      assert.deepEqual(got.filter((e) => e.type === "message").map((e) => e.id), sent, "none missed, none twice");
    }
    assert.equal(refreshed, 1, "the leader refreshed once");

    // An expired cookie is a 401, on /stream and on the Mercure path: never a public 200.
    await context.addCookies([cookie(now() - 60)]);
    const statuses = await pages[0].evaluate(async () => Promise.all(
      ["/stream?topic=p", "/.well-known/mercure?topic=p"].map(async (u) => {
        const ctl = new AbortController();
        const r = await fetch(u, { signal: ctl.signal });
        const text = r.status === 401 ? await r.text() : "";
        ctl.abort();
        return [r.status, text.trim()];
      })));
    for (const [status, text] of statuses) {
      assert.equal(status, 401);
      assert.match(text, /expired/);
    }
    const p = await context.newPage();
    await p.goto(base + "/harness.html?url=" + encodeURIComponent("/stream?topic=q"));
    await p.waitForFunction(() => window.src.readyState === 2, null, { timeout: WAIT });
    assert.equal((await events(p)).length, 0);
  } finally {
    await context.close();
    stopServer(srv);
  }
});

test("the live page draws charts from /stats that move as a steady flow runs, shows private events and resets; writes docs/screenshot.png", { timeout: 60_000 }, async () => {
  const srv = await startServer(["--jwt-key", JWT_KEY]);
  const base = `http://127.0.0.1:${srv.port}`;
  const context = await browser.newContext({ viewport: { width: 1100, height: 1300 }, colorScheme: "light" });
  // A subscriber token that reads every private topic, as the page's token form would set it.
  await context.addCookies([{
    name: "mercureAuthorization", url: base,
    value: jwt.sign({ mercure: { subscribe: ["*"] }, exp: now() + 600 }, JWT_KEY, { algorithm: "HS256" }),
  }]);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // Another client resumes from an id of no history now and then: resets by reason on the chart.
  const resetClient = async () => {
    const ctl = new AbortController();
    const r = await fetch(`${base}/stream`, { headers: { "Last-Event-ID": "not-an-id" }, signal: ctl.signal });
    assert.equal(r.headers.get("sse-resume"), "reset");
    ctl.abort();
  };
  try {
    // Resumes from an id of another history: the page's own stream starts with a reset.
    await page.goto(base + "/?lastEventId=1-1");
    await page.waitForFunction(() => document.getElementById("state").textContent === "open", null, { timeout: WAIT });
    assert.equal(await page.evaluate(() => window.ssehubSource.shared), true);
    for (const id of ["chart-rate", "chart-clients", "chart-ends"]) assert.equal(await page.locator("#" + id).count(), 1);
    await page.waitForFunction(() => document.querySelector("#chart-rate polyline[data-series=published]"), null, { timeout: WAIT });
    const points = (series) => page.evaluate((s) => document.querySelector(`#chart-rate polyline[data-series=${s}]`).getAttribute("points"), series);
    const first = await points("published");

    // A steady flow for 12 s: ticks about every 160 ms (the page keeps the last 100 events,
    // so its reset stays in the list), every seventh private, two more clients' resets, and
    // one private event from the page's own form.
    const FLOW_MS = 12_000;
    const started = Date.now();
    let seq = 0, privates = 0, middle = null;
    await page.fill("#token", TOKEN);
    while (Date.now() - started < FLOW_MS) {
      const priv = seq % 7 === 3;
      if (priv) privates++;
      await publish(srv.port, { data: { seq, value: Math.round(50 + 40 * Math.sin(seq / 8)) / 100 }, event: "tick", private: priv });
      if (seq === 20 || seq === 50) await resetClient();
      if (seq === 35) {
        middle = await points("published");
        await page.fill("#pub-data", '{"secret": "for token holders"}');
        await page.check("#pub-private");
        await page.click("#pub-send");
      }
      seq++;
      await new Promise((r) => setTimeout(r, 160));
    }
    // The newest events, on top of the list: one on another topic, then a private one.
    await publish(srv.port, { data: { order: 7, state: "shipped" }, event: "tick", topic: "orders/7" });
    const { id: lastPrivate } = await publish(srv.port, { data: { order: 7, card: "•••• 4242" }, event: "tick", topic: "orders/7", private: true });
    privates++;
    console.log(`published ${seq + 2} events (${privates} private) in ${Date.now() - started} ms`);
    await until("the last private event on top", async () =>
      (await page.locator("#events li").first().getAttribute("data-id")) === lastPrivate);
    assert.ok((await page.locator("#events li").first().getAttribute("class")).split(" ").includes("private"));
    assert.match(await page.locator("#events li .topics").first().textContent(), /^orders\/7$/);
    await until("the last poll drew the flow", async () => (await points("published")) !== middle, 3000);
    const last = await points("published");
    assert.notEqual(last, first, "the published line moved");
    assert.notEqual(middle, first);
    assert.match(await page.locator("#legend-rate").textContent(), /published [1-9]/);
    const delivered = await points("delivered");
    assert.ok(delivered.split(" ").some((p) => Number(p.split(",")[1]) < 80), `delivered rises: ${delivered}`);
    assert.ok((await page.locator("#chart-clients polyline").count()) >= 1);
    assert.ok((await page.locator('#chart-ends polyline[data-series^="reset "]').count()) >= 1, "resets by reason are drawn");

    // Private events and the reset show distinctly.
    await until("the page's own private event", async () => (await page.locator(".event.private").count()) >= 1);
    assert.ok(await page.locator(".event.private .badge.private").count() >= 1);
    assert.ok(await page.locator(".event.reset .badge.reset").count() >= 1, "the reset has its badge");
    assert.equal(await page.locator("#reset-banner").isVisible(), true);
    assert.match(await page.locator("#ev-kinds").textContent(), /\d+ private.*1 reset/);
    const priv = await page.locator(".event.private").count();
    assert.ok(priv >= 1 && priv <= privates + 1, `${priv} private events shown`);
    assert.deepEqual(errors, []);
    await page.screenshot({ path: join(OUT, "page-charts.png") });
    await page.screenshot({ path: join(ROOT, "docs", "screenshot.png") });
  } finally {
    await context.close();
    stopServer(srv);
  }
});
