/**
 * @module A fake EventStreams server replaying recorded `recentchange` events as SSE frames, with
 * ids in EventStreams' shape (`[{"topic","partition","offset"}]`), resume by Last-Event-ID, frames
 * split into random chunks, and connections cut in the middle of an event on request.
 */

/** Options for {@linkcode startFakeEventStreams}. */
export interface FakeStreamOptions {
  /** Recorded events (JSON lines), in stream order. */
  lines: string[];
  /** For connection k, cut it mid-event after `cuts[k]` events (then the client must reconnect). */
  cuts?: number[];
  seed?: number;
}

/** A running fake stream. */
export interface FakeEventStreams extends AsyncDisposable {
  url: string;
  /** The Last-Event-ID header of each connection ("" for none). */
  connections: string[];
  close(): Promise<void>;
}

const FIXTURES = new URL("../fixtures/wikimedia/", import.meta.url);

/** The recorded 2018-03-07 Wikidata capture, one JSON event per line (3,818 events). */
export function recordedStreamLines(
  name = "eventstreams_wikidatawiki_2018-03-07_quickstatements_batch.jsonl",
): string[] {
  return Deno.readTextFileSync(new URL(name, FIXTURES)).split("\n").filter((
    l,
  ) => l.trim());
}

/** Starts the server on 127.0.0.1 with a free port. */
export function startFakeEventStreams(
  options: FakeStreamOptions,
): FakeEventStreams {
  const events = options.lines.map((line) => {
    const e = JSON.parse(line);
    const id = JSON.stringify([{
      topic: e.meta.topic,
      partition: e.meta.partition ?? 0,
      offset: e.meta.offset,
    }]);
    return {
      offset: Number(e.meta.offset),
      frame: `event: message\nid: ${id}\ndata: ${line}\n\n`,
    };
  });
  const connections: string[] = [];
  let seed = options.seed ?? 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const controllers = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      const last = req.headers.get("last-event-id") ?? "";
      const k = connections.push(last) - 1;
      let from = 0;
      if (last) {
        const offset = Number(JSON.parse(last)[0]?.offset);
        from = events.findIndex((e) => e.offset > offset);
        if (from < 0) from = events.length;
      }
      const cut = options.cuts?.[k];
      const encoder = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controllers.add(controller);
          controller.enqueue(encoder.encode(":ok\n\n"));
          let text = "";
          const end = cut === undefined
            ? events.length
            : Math.min(events.length, from + cut);
          for (let i = from; i < end; i++) text += events[i]!.frame;
          if (cut !== undefined && end < events.length) {
            const next = events[end]!.frame;
            text += next.slice(0, Math.floor(next.length / 2)); // cut in the middle of an event
          }
          for (let i = 0; i < text.length;) {
            const size = 1 + Math.floor(random() * 3000);
            controller.enqueue(encoder.encode(text.slice(i, i + size)));
            i += size;
            if (random() < 0.05) await new Promise((r) => setTimeout(r, 1));
          }
          if (cut !== undefined) {
            controllers.delete(controller);
            controller.close();
          }
          // Otherwise stay open (idle), as the real stream does between events.
        },
      });
      return new Response(body, {
        headers: { "content-type": "text/event-stream" },
      });
    },
  );
  const close = async () => {
    for (const c of controllers) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    await server.shutdown();
  };
  return {
    url: `http://127.0.0.1:${server.addr.port}/v2/stream/recentchange`,
    connections,
    close,
    [Symbol.asyncDispose]: close,
  };
}
