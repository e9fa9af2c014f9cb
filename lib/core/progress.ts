/**
 * @module A one-line progress bar for backfills on a terminal (stderr); silent elsewhere. The
 * producer draws it only when the log lines are readable ones (LOG_FORMAT), which clear the
 * bar's line before they print, so a bar never lands inside a JSON line.
 */

/** Reports per-wiki progress between 0 and 1. */
export type ProgressReporter = (
  wiki: string,
  fraction: number,
  detail: string,
) => void;

/** A bar on stderr when it is a terminal, else undefined (log lines carry `progress` instead). */
export function terminalProgress(
  stream: { isTerminal(): boolean; writeSync(p: Uint8Array): number } =
    Deno.stderr,
): ProgressReporter | undefined {
  if (!stream.isTerminal()) return undefined;
  const state = new Map<string, number>();
  const encoder = new TextEncoder();
  return (wiki, fraction, detail) => {
    state.set(wiki, fraction);
    const all = [...state.values()];
    const mean = all.reduce((a, b) => a + b, 0) / all.length;
    stream.writeSync(
      encoder.encode(`\r${renderBar(mean)} ${wiki} ${detail}\x1b[K`),
    );
    if (all.every((f) => f >= 1)) stream.writeSync(encoder.encode("\n"));
  };
}

/** `[#######.............]  35.0%` */
export function renderBar(fraction: number, width = 30): string {
  const f = Math.min(1, Math.max(0, fraction));
  const filled = Math.round(f * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${
    (f * 100).toFixed(1).padStart(5)
  }%`;
}
