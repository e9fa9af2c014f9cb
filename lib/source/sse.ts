/** @module A spec-compliant Server-Sent Events parser (WHATWG HTML "event stream interpretation"). */

/** One dispatched event. */
export interface SseEvent {
  /** The event type (`message` unless the stream said otherwise). */
  event: string;
  data: string;
  /** The last event id in effect when this event was dispatched ("" when none). */
  id: string;
}

/**
 * Feeds text chunks (split anywhere, even inside a line or a CRLF) and returns the events they
 * complete. Handles LF, CR and CRLF line ends, a leading BOM, comments, multi-line data, `id`
 * (ignored when it contains NUL) and `retry`.
 */
export class SseParser {
  #buf = "";
  #data: string[] = [];
  #event = "";
  #idBuffer = "";
  #lastId = "";
  #sawData = false;
  #first = true;
  #pendingCr = false;
  /** Reconnection time requested by the server (`retry:`), in ms. */
  retryMs: number | undefined;

  /** The id of the last dispatched event (to send as Last-Event-ID); a cut event's id is not it. */
  get lastEventId(): string {
    return this.#lastId;
  }

  /** Parses a chunk; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    if (this.#first && chunk.length > 0) {
      this.#first = false;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    if (this.#pendingCr && chunk.startsWith("\n")) chunk = chunk.slice(1);
    this.#pendingCr = false;
    this.#buf += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.#buf.length; i++) {
      const c = this.#buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.#buf.slice(start, i);
      if (c === 13) {
        if (i + 1 < this.#buf.length) {
          if (this.#buf.charCodeAt(i + 1) === 10) i++;
        } else {
          this.#pendingCr = true; // a CRLF may be split across chunks
        }
      }
      start = i + 1;
      const ev = this.#line(line);
      if (ev) out.push(ev);
    }
    this.#buf = this.#buf.slice(start);
    return out;
  }

  /** Drops a partial event (the connection ended mid-event), including an id it carried. */
  reset(): void {
    this.#buf = "";
    this.#idBuffer = this.#lastId;
    this.#data = [];
    this.#event = "";
    this.#sawData = false;
    this.#pendingCr = false;
  }

  #line(line: string): SseEvent | undefined {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.#event = value;
        break;
      case "data":
        this.#data.push(value);
        this.#sawData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.#idBuffer = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
    }
    return undefined;
  }

  #dispatch(): SseEvent | undefined {
    const sawData = this.#sawData;
    this.#lastId = this.#idBuffer;
    const event = {
      event: this.#event || "message",
      data: this.#data.join("\n"),
      id: this.#lastId,
    };
    this.#data = [];
    this.#event = "";
    this.#sawData = false;
    return sawData ? event : undefined;
  }
}
