// The event-stream parser inside ssehub.js (SsehubSource.Parser), in Node: the WHATWG
// parsing rules case by case (CRLF, CR and LF line ends, comments, a field without a colon,
// one leading space stripped, an id with NUL ignored, no data no event, an unfinished event
// at the end not dispatched), ssehub's tags (topic:, private:), and chunking invariance:
// the same text fed in random pieces (a CRLF split too) gives the same events.
//
// Run by scripts/browser-test.sh with the other files here (node --test tests/browser/).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SOURCE = readFileSync(resolve(ROOT, "src", "ssehub.js"), "utf8");

function loadParser() {
  const self = {};
  vm.runInNewContext(SOURCE, { self, EventTarget, URL, URLSearchParams });
  return self.SsehubSource.Parser;
}
const Parser = loadParser();

/** Feeds `pieces` to a fresh parser: its events and retry values. */
function parse(pieces) {
  const events = [], retries = [];
  const p = new Parser((e) => events.push({ ...e, topics: [...e.topics] }), (ms) => retries.push(ms));
  for (const piece of pieces) p.feed(piece);
  return { events, retries };
}

const ev = (data, more = {}) => ({ type: "message", data, lastEventId: "", id: null, topics: [], private: false, ...more });

const CASES = [
  ["one event", "data: a\n\n", [ev("a")]],
  ["CRLF, CR and LF end lines alike", "data: a\r\ndata: b\rdata: c\n\r\n", [ev("a\nb\nc")]],
  ["a comment is skipped", ": hi\ndata: x\n\n", [ev("x")]],
  ["one leading space is stripped, only one", "data:  two\ndata:none\n\n", [ev(" two\nnone")]],
  ["a field without a colon has an empty value", "data\ndata\n\n", [ev("\n")]],
  ["named event with an id", "id: 7\nevent: tick\ndata: d\n\n", [ev("d", { type: "tick", lastEventId: "7", id: "7" })]],
  ["the id carries over; id null on an event without one", "id: 7\ndata: a\n\nevent: reset\ndata: r\n\n",
    [ev("a", { lastEventId: "7", id: "7" }), ev("r", { type: "reset", lastEventId: "7" })]],
  ["an id with NUL is ignored", "id: 1\ndata: a\n\nid: x\0y\ndata: b\n\n",
    [ev("a", { lastEventId: "1", id: "1" }), ev("b", { lastEventId: "1" })]],
  ["no data, no event (the id still moves)", "id: 5\n\ndata: b\n\n", [ev("b", { lastEventId: "5" })]],
  ["an unfinished event at the end is not dispatched", "data: a\n\ndata: b\n", [ev("a")]],
  ["unknown fields are ignored", "foo: bar\ndata: a\n\n", [ev("a")]],
  ["tags: topics in order, private", "topic: o/7\ntopic: o\nprivate: 1\nid: 9\ndata: s\n\n",
    [ev("s", { topics: ["o/7", "o"], private: true, lastEventId: "9", id: "9" })]],
  ["tags do not carry over to the next event", "topic: a\nprivate: 1\ndata: 1\n\ndata: 2\n\n",
    [ev("1", { topics: ["a"], private: true }), ev("2")]],
  ["the preamble of an ssehub stream", "retry: 3120\n: connected, client #1\n\n", []],
];

for (const [name, text, want] of CASES) {
  test(`parser: ${name}`, () => {
    assert.deepEqual(parse([text]).events, want);
  });
}

test("parser: retry takes digits only", () => {
  assert.deepEqual(parse(["retry: 2500\nretry: 1x\nretry:\n\n"]).retries, [2500]);
});

test("parser: the same text in random pieces gives the same events (seeded)", () => {
  const text = "retry: 100\n: c\r\nid: 1\r\nevent: tick\r\ntopic: a\r\ndata: x\r\ndata: y\r\n\r\n" +
    "topic: b\rprivate: 1\rid: 2\rdata: é 😀\r\rdata\n\ndata: last\n\n";
  const whole = parse([text]);
  assert.equal(whole.events.length, 4);
  let seed = 7;
  const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  for (let round = 0; round < 500; round++) {
    const pieces = [];
    for (let at = 0; at < text.length;) {
      const n = 1 + rand(6);
      pieces.push(text.slice(at, at + n));
      at += n;
    }
    assert.deepEqual(parse(pieces), whole, `seed round ${round}: ${JSON.stringify(pieces)}`);
  }
  // A CRLF split across two chunks is one line end, not two.
  assert.deepEqual(parse(["data: a\r", "\ndata: b\r\n\r\n"]).events, [ev("a\nb")]);
});
