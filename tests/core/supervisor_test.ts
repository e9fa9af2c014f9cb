/** Unit tests of lib/core/supervisor.ts with fake services and an instant sleep. */
import assert from "node:assert/strict";
import {
  createSupervisor,
  type Service,
  type Supervisor,
} from "../../lib/core/supervisor.ts";
import { ConfigError, FencedError, isFatal } from "../../lib/core/errors.ts";
import { captureLogger } from "../_helpers.ts";

Deno.test.sanitizer({ ops: true, resources: true });

/** A service whose `done` the test settles. */
function fakeService() {
  const done = Promise.withResolvers<void>();
  let closed = 0;
  const service: Service & { closed(): number } = {
    done: done.promise,
    close: () => {
      closed++;
      return Promise.resolve();
    },
    closed: () => closed,
  };
  return { service, done };
}

function connRefused(): Error {
  const inner = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), {
    code: "ECONNREFUSED",
  });
  const err = new Error("Connection error", { cause: inner });
  err.name = "KafkaJSNumberOfRetriesExceeded";
  return err;
}

Deno.test("createSupervisor() waits out failed starts with capped backoff, then runs", async () => {
  const log = captureLogger("info");
  const controller = new AbortController();
  const waits: number[] = [];
  const ready = fakeService();
  let starts = 0;
  const sup: Supervisor<Service> = createSupervisor({
    name: "consumer",
    dependencies: ["kafka", "postgresql"],
    dependencyOf: () => "kafka",
    log,
    signal: controller.signal,
    maxDelayMs: 4000,
    stableMs: 0,
    sleep: (ms: number): Promise<void> => {
      waits.push(ms);
      const o = sup.outage();
      assert.equal(o?.dependency, "kafka");
      assert.equal(o?.error, "KafkaJSNumberOfRetriesExceeded (ECONNREFUSED)");
      assert.equal(sup.dependencyUp().get("kafka"), 0);
      assert.equal(sup.dependencyUp().get("postgresql"), 1);
      return Promise.resolve();
    },
    start: () => {
      starts++;
      return starts <= 6
        ? Promise.reject(connRefused())
        : Promise.resolve(ready.service);
    },
  });
  const running = sup.run();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(sup.current(), ready.service);
  assert.equal(sup.outage(), undefined);
  assert.equal(sup.restarts(), 6);
  assert.equal(waits.length, 6);
  assert.ok(waits.every((w) => w <= 4000), `capped: ${waits}`);
  assert.ok(waits[0]! >= 800 && waits[0]! <= 1000, `first: ${waits[0]}`);
  // One line when the outage starts, none per retry, one when it ends.
  const msgs = log.lines.map((l) => l.msg);
  assert.deepEqual(msgs, [
    "consumer cannot reach kafka, waiting for it",
    "consumer running again",
  ]);
  ready.done.resolve();
  await running;
  controller.abort();
});

Deno.test("createSupervisor() closes and restarts an instance that failed while running", async () => {
  const controller = new AbortController();
  const first = fakeService(), second = fakeService();
  const instances = [first, second];
  const sup = createSupervisor({
    name: "consumer",
    dependencies: ["kafka"],
    dependencyOf: () => "kafka",
    log: captureLogger("info"),
    signal: controller.signal,
    sleep: () => Promise.resolve(),
    start: () => Promise.resolve(instances.shift()!.service),
  });
  const running = sup.run();
  await new Promise((r) => setTimeout(r, 0));
  const err = new Error("Failed to find group coordinator");
  err.name = "KafkaJSGroupCoordinatorNotFound";
  first.done.reject(err);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(first.service.closed(), 1);
  assert.equal(sup.current(), second.service);
  assert.equal(sup.restarts(), 1);
  controller.abort();
  second.done.resolve();
  await running;
});

Deno.test("createSupervisor() rethrows a fatal error and never restarts", async (t) => {
  // The publisher turns Kafka's PRODUCER_FENCED into a FencedError (lib/kafka/publisher.ts).
  const fenced = new FencedError("test-txn", {
    cause: Object.assign(new Error("Producer fenced"), {
      name: "KafkaJSProtocolError",
      type: "PRODUCER_FENCED",
    }),
  });
  const sasl = Object.assign(new Error("SASL PLAIN authentication failed"), {
    name: "KafkaJSSASLAuthenticationError",
  });
  const pgAuth = Object.assign(new Error("password authentication failed"), {
    name: "PostgresError",
    code: "28P01",
  });
  const config = new ConfigError("Invalid configuration: X");
  for (const err of [fenced, sasl, pgAuth, config]) {
    await t.step(err.name, async () => {
      let starts = 0;
      const sup = createSupervisor({
        name: "producer",
        dependencies: ["kafka"],
        dependencyOf: () => "kafka",
        log: captureLogger("info"),
        signal: new AbortController().signal,
        sleep: () => Promise.resolve(),
        start: () => {
          starts++;
          return Promise.reject(new Error("Wrapped", { cause: err }));
        },
      });
      await assert.rejects(sup.run(), (e: Error) => e.cause === err);
      assert.equal(starts, 1);
    });
  }
});

Deno.test("isFatal() counts kafkajs's give-ups and connection errors as outages", () => {
  const coordinator = Object.assign(
    new Error("Failed to find group coordinator"),
    {
      name: "KafkaJSNonRetriableError",
      retriable: false,
    },
  );
  const pgDown = Object.assign(new Error("connect ECONNREFUSED"), {
    code: "ECONNREFUSED",
  });
  for (const err of [connRefused(), coordinator, pgDown, new TypeError("x")]) {
    assert.equal(isFatal(err), false, err.name);
  }
});

Deno.test("createSupervisor() stops waiting when the signal aborts during a start", async () => {
  const controller = new AbortController();
  const late = fakeService();
  const started = Promise.withResolvers<Service>();
  const sup = createSupervisor({
    name: "consumer",
    dependencies: ["kafka"],
    dependencyOf: () => "kafka",
    log: captureLogger("info"),
    signal: controller.signal,
    start: () => started.promise,
  });
  const running = sup.run();
  controller.abort();
  await running;
  started.resolve(late.service);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(late.service.closed(), 1, "the late instance is closed");
  late.done.resolve();
});

Deno.test("createSupervisor() keeps backing off an instance that starts and fails at once", async () => {
  const log = captureLogger("info");
  const controller = new AbortController();
  const waits: number[] = [];
  const sup: Supervisor<Service> = createSupervisor({
    name: "consumer",
    dependencies: ["kafka"],
    dependencyOf: () => "kafka",
    log,
    signal: controller.signal,
    maxDelayMs: 30_000,
    sleep: (ms: number): Promise<void> => {
      waits.push(ms);
      if (waits.length >= 8) controller.abort();
      return Promise.resolve();
    },
    // Starts, then fails straight away: never stable.
    start: () =>
      Promise.resolve({
        done: Promise.reject(connRefused()),
        close: () => Promise.resolve(),
      }),
  });
  await sup.run();
  assert.equal(waits.length, 8);
  assert.ok(waits[7]! >= 20_000, `backoff grows: ${waits}`);
  const msgs = log.lines.map((l) => l.msg);
  assert.deepEqual(msgs, ["consumer cannot reach kafka, waiting for it"]);
});
