/** @module A small seeded PRNG (mulberry32), so a failing chaos schedule can be replayed. */

/** Returns numbers in [0, 1). */
export type Random = () => number;

/** mulberry32 seeded with `seed`. */
export function prng(seed: number): Random {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
