// Twelve Chromium tabs on one origin, each with an EventSource, behind Caddy over
// HTTP/2: all of them must receive every event. Over HTTP/1.1 a browser opens at most
// six connections per origin, so the seventh EventSource would stall.
//
// Not a `node --test` file: tests/proxy.rs (cargo test) starts ssehub and Caddy and runs
// this script with
//   PROXY_ORIGIN   https://127.0.0.1:PORT (Caddy, tls internal: its certificate is not
//                  trusted here, so Chromium runs with --ignore-certificate-errors)
//   PUBLISH_URL    ssehub's POST /publish, straight to the hub
//   PUBLISH_TOKEN  its bearer token
//   CHROMIUM_BIN   the browser (default /usr/bin/chromium, Debian's package)
// It prints one line per check and exits 0 when every tab got every event in order.

import { chromium } from "playwright-core";

const ORIGIN = process.env.PROXY_ORIGIN;
const PUBLISH = process.env.PUBLISH_URL;
const TOKEN = process.env.PUBLISH_TOKEN;
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const TABS = 12;
const EVENTS = 5;
const WAIT = 15_000; // deadline of any single wait

if (!ORIGIN || !PUBLISH || !TOKEN) {
  console.error("proxy-tabs: PROXY_ORIGIN, PUBLISH_URL and PUBLISH_TOKEN are required");
  process.exit(2);
}

// A last-resort cap: the Rust test bounds the whole run too.
setTimeout(() => {
  console.error("proxy-tabs: overran 50 s");
  process.exit(1);
}, 50_000).unref();

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  timeout: 30_000,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--ignore-certificate-errors",
  ],
});
let failed = false;
try {
  // One context: the tabs share one connection pool, as tabs of one browser do.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const pages = [];
  for (let i = 0; i < TABS; i++) {
    const page = await context.newPage();
    const resp = await page.goto(`${ORIGIN}/health`, { timeout: WAIT });
    if (resp.status() !== 200) throw new Error(`tab ${i}: /health answered ${resp.status()}`);
    await page.evaluate(() => {
      window.got = [];
      window.opened = false;
      const es = new EventSource("/stream?topic=tabs");
      es.onopen = () => { window.opened = true; };
      es.addEventListener("tab", (e) => window.got.push(e.data));
    });
    pages.push(page);
  }
  const protocols = await Promise.all(pages.map((p) => p.evaluate(
    () => performance.getEntriesByType("navigation")[0]?.nextHopProtocol)));
  console.log(`protocols: ${[...new Set(protocols)].join(",")}`);
  if (protocols.some((p) => p !== "h2")) throw new Error(`not all tabs on HTTP/2: ${protocols}`);
  // Every EventSource is open (with HTTP/1.1 the seventh would still be connecting).
  await Promise.all(pages.map((p, i) => p.waitForFunction(() => window.opened, null, { timeout: WAIT })
    .catch(() => { throw new Error(`tab ${i}: EventSource never opened`); })));
  console.log(`open: ${TABS} tabs`);
  const want = [];
  for (let n = 1; n <= EVENTS; n++) {
    const data = `event ${n}`;
    const r = await fetch(PUBLISH, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ topic: "tabs", event: "tab", data }),
    });
    const answer = await r.json();
    if (r.status !== 200) throw new Error(`publish answered ${r.status} ${JSON.stringify(answer)}`);
    if (answer.delivered_to !== TABS) {
      throw new Error(`event ${n} reached ${answer.delivered_to} subscribers, not ${TABS}`);
    }
    want.push(data);
  }
  await Promise.all(pages.map((p, i) => p.waitForFunction((n) => window.got.length >= n, EVENTS,
    { timeout: WAIT }).catch(() => { throw new Error(`tab ${i}: not every event arrived`); })));
  for (const [i, p] of pages.entries()) {
    const got = await p.evaluate(() => window.got);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`tab ${i} got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
  }
  console.log(`received: ${EVENTS} events in each of ${TABS} tabs`);
} catch (e) {
  failed = true;
  console.error(`proxy-tabs: FAILED: ${e.message}`);
} finally {
  await browser.close().catch(() => {});
}
process.exit(failed ? 1 : 0);
