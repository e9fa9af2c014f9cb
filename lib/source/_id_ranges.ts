/** @module A set of rcids kept as sorted inclusive ranges, with a compact text form for checkpoints. */

/** Sorted, disjoint, non-adjacent inclusive ranges of ids (64-bit, as bigint). */
export class IdRanges {
  /** Flat pairs: starts[i]..ends[i]. */
  #starts: bigint[] = [];
  #ends: bigint[] = [];
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
    } else if (joinsLeft) this.#ends[i] = id;
    else if (joinsRight) this.#starts[next] = id;
    else {
      this.#starts.splice(next, 0, id);
      this.#ends.splice(next, 0, id);
    }
  }

  /** Forgets every id. */
  clear(): void {
    this.#encoded = undefined;
    this.#starts = [];
    this.#ends = [];
  }

  /** Forgets every id below `low`. */
  dropBelow(low: bigint): void {
    this.#encoded = undefined;
    let k = 0;
    while (k < this.#starts.length && this.#ends[k]! < low) k++;
    this.#starts.splice(0, k);
    this.#ends.splice(0, k);
    if (this.#starts.length > 0 && this.#starts[0]! < low) {
      this.#starts[0] = low;
    }
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
    this.#encoded ??= this.#fitsNumbers()
      ? this.#encodeNumbers()
      : this.#encodeBigints();
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
    return r;
  }

  /** Whether every id is a safe integer, so plain numbers give the same text faster. */
  #fitsNumbers(): boolean {
    const n = this.#starts.length;
    return n === 0 ||
      (this.#starts[0]! >= 0n &&
        this.#ends[n - 1]! <= BigInt(Number.MAX_SAFE_INTEGER));
  }

  #encodeNumbers(): string {
    let prev = 0, text = "";
    for (let i = 0; i < this.#starts.length; i++) {
      const s = Number(this.#starts[i]!), e = Number(this.#ends[i]!);
      if (i > 0) text += ",";
      text += (s - prev).toString(36);
      if (s !== e) text += "+" + (e - s).toString(36);
      prev = e;
    }
    return text;
  }

  #encodeBigints(): string {
    let prev = 0n;
    const parts: string[] = [];
    for (let i = 0; i < this.#starts.length; i++) {
      const s = this.#starts[i]!, e = this.#ends[i]!;
      const gap = (s - prev).toString(36);
      parts.push(s === e ? gap : `${gap}+${(e - s).toString(36)}`);
      prev = e;
    }
    return parts.join(",");
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

function parseBase36(s: string): bigint {
  let n = 0n;
  for (const ch of s) n = n * 36n + BigInt(parseInt(ch, 36));
  return n;
}
