/**
 * @module A targeted fix of kafkajs 2.2.4's request queue (the last release; no upstream fix).
 *
 * `RequestQueue.scheduleCheckPendingRequests()` runs after every response. With nothing
 * pending and no throttling it computes `throttledUntil - Date.now()` = `-1 - now`, a large
 * negative delay, and calls `setTimeout` with it. Node (and Deno's node compatibility) clamp
 * that to 1 ms and print `TimeoutNegativeWarning` once per process; worse, the timer's callback
 * schedules itself again the same way, so every broker connection wakes up every millisecond
 * until it closes (an idle admin connection: 0.49 s of CPU per 10 s, 0.11 s with this fix).
 * With nothing pending there is nothing to schedule: `push()` schedules again as soon as it
 * queues a request, and a throttled queue with pending requests keeps the original timer.
 */
// The file is part of the pinned package (deno.json); its module is the one kafkajs requires.
// @ts-types="./_request_queue_fix.d.ts"
import RequestQueue from "kafkajs/src/network/requestQueue/index.js";

interface Queue {
  pending: unknown[];
}

const proto = RequestQueue.prototype as {
  scheduleCheckPendingRequests(this: Queue): void;
  __wikistreamFixed?: boolean;
};

if (!proto.__wikistreamFixed) {
  const original = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function (this: Queue) {
    if (this.pending.length === 0) return;
    original.call(this);
  };
  proto.__wikistreamFixed = true;
}

/** True once the fix is installed (importing this module installs it). */
export function requestQueueFixed(): boolean {
  return proto.__wikistreamFixed === true;
}
