/** @module A set of rcids kept as sorted inclusive ranges, with a compact text form for checkpoints. */

/** Sorted, disjoint, non-adjacent inclusive ranges of ids (64-bit, as bigint). */
export class IdRanges {
  /** Flat pairs: starts[i]..ends[i]. */
  #starts: bigint[] = [];
  #ends: bigint[] = [];
  /**
   * Each range's item of the text form, kept until that range or the one before it changes:
   * a page adds a few hundred ids to thousands of ranges, so most items carry over.
   */
  #items: (string | undefined)[] = [];
  /** {@linkcode encode}'s last answer, until the set changes (a page encodes it twice). */
  #encoded: string | undefined;

  /** Number of ranges (not ids). */
  get rangeCount(): number {
    return this.#starts.length;
  }

  /** Number of ids held. */
  get size(): number {
    let n = 0n;
    for (let i = 0; i < this.#starts.length; i++) {
      n += this.#ends[i]! - this.#starts[i]! + 1n;
    }
    return Number(n);
  }

  /** A copy that can change independently. */
  clone(): IdRanges {
    const c = new IdRanges();
    c.#starts = [...this.#starts];
    c.#ends = [...this.#ends];
    c.#items = [...this.#items];
    c.#encoded = this.#encoded;
    return c;
  }

  /** Whether `id` is in the set. */
  has(id: bigint): boolean {
    const i = this.#lastStartAtOrBelow(id);
    return i >= 0 && this.#ends[i]! >= id;
  }

  /** Adds one id, merging with its neighbours. */
  add(id: bigint): void {
    const i = this.#lastStartAtOrBelow(id);
    if (i >= 0 && this.#ends[i]! >= id) return;
    this.#encoded = undefined;
    const joinsLeft = i >= 0 && this.#ends[i]! + 1n === id;
    const next = i + 1;
    const joinsRight = next < this.#starts.length &&
      this.#starts[next]! - 1n === id;
    if (joinsLeft && joinsRight) {
      this.#ends[i] = this.#ends[next]!;
      this.#starts.splice(next, 1);
      this.#ends.splice(next, 1);
      this.#items.splice(next, 1);
      this.#stale(i, next);
    } else if (joinsLeft) {
      this.#ends[i] = id;
      this.#stale(i, next);
    } else if (joinsRight) {
      this.#starts[next] = id;
      this.#stale(next, next);
    } else {
      this.#starts.splice(next, 0, id);
      this.#ends.splice(next, 0, id);
      this.#items.splice(next, 0, undefined);
      this.#stale(next, next + 1);
    }
  }

  /** Forgets every id. */
  clear(): void {
    this.#encoded = undefined;
    this.#starts = [];
    this.#ends = [];
    this.#items = [];
  }

  /** Forgets every id below `low`. */
  dropBelow(low: bigint): void {
    this.#encoded = undefined;
    let k = 0;
    while (k < this.#starts.length && this.#ends[k]! < low) k++;
    this.#starts.splice(0, k);
    this.#ends.splice(0, k);
    this.#items.splice(0, k);
    if (this.#starts.length > 0 && this.#starts[0]! < low) {
      this.#starts[0] = low;
    }
    this.#stale(0, 0); // the first gap now counts from 0
  }

  /** The lowest id kept by the `keep` highest ranges (to trim to a size budget). */
  lowOfLast(keep: number): bigint | undefined {
    if (this.#starts.length === 0) return undefined;
    return this.#starts[Math.max(0, this.#starts.length - keep)];
  }

  /**
   * The compact text form: ranges as base-36 `gap` or `gap+length` items joined by `,`, where
   * `gap` is the distance from the previous range's end (the first from 0) and `length` is
   * end - start when above 0. Ten thousand ranges take about 60 KB.
   */
  encode(): string {
    if (this.#encoded === undefined) {
      const items = this.#items;
      for (let i = 0; i < this.#starts.length; i++) items[i] ??= this.#item(i);
      this.#encoded = items.join(",");
    }
    return this.#encoded;
  }

  /** Parses {@linkcode encode}'s form; throws RangeError on anything else. */
  static decode(text: string): IdRanges {
    const r = new IdRanges();
    if (text === "") return r;
    let prev = 0n;
    for (const item of text.split(",")) {
      const m = /^([0-9a-z]+)(?:\+([0-9a-z]+))?$/.exec(item);
      if (!m) throw new RangeError(`Invalid id range "${item}"`);
      const s = prev + parseBase36(m[1]!);
      const e = s + (m[2] ? parseBase36(m[2]) : 0n);
      if (r.#starts.length > 0 && s <= prev + 1n) {
        throw new RangeError(`Invalid id range "${item}": not increasing`);
      }
      r.#starts.push(s);
      r.#ends.push(e);
      prev = e;
    }
    r.#items = new Array(r.#starts.length);
    return r;
  }

  /** Marks the items of ranges `from` to `to` for re-encoding. */
  #stale(from: number, to: number): void {
    for (let j = from; j <= to && j < this.#items.length; j++) {
      this.#items[j] = undefined;
    }
  }

  /** Range `i`'s item: its gap from the previous range's end, then `+length` if above 0. */
  #item(i: number): string {
    const prev = i === 0 ? 0n : this.#ends[i - 1]!;
    const s = this.#starts[i]!, e = this.#ends[i]!;
    // Plain numbers when exact (rcids are far below 2^53): same text, much faster.
    if (prev >= 0n && e <= MAX_SAFE) {
      const p = Number(prev), sn = Number(s), en = Number(e);
      const gap = (sn - p).toString(36);
      return sn === en ? gap : `${gap}+${(en - sn).toString(36)}`;
    }
    const gap = (s - prev).toString(36);
    return s === e ? gap : `${gap}+${(e - s).toString(36)}`;
  }

  /** Index of the last range starting at or below `id`, or -1. */
  #lastStartAtOrBelow(id: bigint): number {
    let lo = 0, hi = this.#starts.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.#starts[mid]! <= id) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function parseBase36(s: string): bigint {
  let n = 0n;
  for (const ch of s) n = n * 36n + BigInt(parseInt(ch, 36));
  return n;
}
