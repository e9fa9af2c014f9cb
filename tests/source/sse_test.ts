import assert from "node:assert/strict";
import { SseParser } from "../../lib/source/sse.ts";

Deno.test.sanitizer?.({ ops: true, resources: true });

const STREAM =
  'id: [{"offset":1}]\nevent: message\ndata: {"a":1}\n\n: keepalive\n\n' +
  "data: line1\ndata: line2\n\nid: 2\r\ndata: crlf\r\n\r\nretry: 2500\rdata: cr\r\r";

function parseAll(chunks: string[]) {
  const p = new SseParser();
  return { events: chunks.flatMap((c) => p.push(c)), parser: p };
}

Deno.test("SseParser parses fields, comments, multi-line data and all line endings", () => {
  const { events, parser } = parseAll([STREAM]);
  assert.deepEqual(events, [
    { event: "message", data: '{"a":1}', id: '[{"offset":1}]' },
    { event: "message", data: "line1\nline2", id: '[{"offset":1}]' },
    { event: "message", data: "crlf", id: "2" },
    { event: "message", data: "cr", id: "2" },
  ]);
  assert.equal(parser.retryMs, 2500);
  assert.equal(parser.lastEventId, "2");
});

Deno.test("SseParser gives the same events however the stream is split", () => {
  const whole = parseAll([STREAM]).events;
  for (let size = 1; size <= 7; size++) {
    const chunks = [];
    for (let i = 0; i < STREAM.length; i += size) {
      chunks.push(STREAM.slice(i, i + size));
    }
    assert.deepEqual(parseAll(chunks).events, whole, `chunks of ${size}`);
  }
});

Deno.test("SseParser strips a leading BOM and ignores ids containing NUL", () => {
  const { events } = parseAll(["\ufeffid: a\0b\ndata: x\n\n"]);
  assert.deepEqual(events, [{ event: "message", data: "x", id: "" }]);
});

Deno.test("SseParser.reset() drops a half-received event and its id", () => {
  const p = new SseParser();
  assert.equal(p.push('id: 7\ndata: whole\n\nid: 8\ndata: {"cut').length, 1);
  p.reset();
  assert.equal(p.lastEventId, "7", "resuming from 8 would skip the cut event");
  assert.deepEqual(p.push("data: next\n\n"), [{
    event: "message",
    data: "next",
    id: "7",
  }]);
});
