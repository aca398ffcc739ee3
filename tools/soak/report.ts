// The verdict on a target's result (no lost, truncated or crossed byte, no
// failed session, no error line, no fd leak, RSS bounded and not growing)
// and the summary tables.

import type { Proto, TargetResult } from "./types.ts";

/** Second-half peak RSS may exceed the first half's by this factor plus slack (noise, heap growth steps). */
const RSS_PLATEAU_FACTOR = 1.15;
const RSS_PLATEAU_SLACK = 16 * 2 ** 20;
/** The plateau is judged on runs of at least this length, after this fraction of the run. */
const RSS_PLATEAU_MIN_SECONDS = 30;
export const RSS_WARMUP_FRACTION = 0.2;
/** Bound on RSS per concurrent session at the peak (Deno measured ~190 KiB, Bun ~80 KiB). */
const RSS_PER_SESSION_MAX = 512 * 1024;

const mib = (n: number) => (n / 2 ** 20).toFixed(1);

/** Problems in a result; empty when clean. */
export function verdict(r: TargetResult, protocols: Proto[]): string[] {
  const out: string[] = [];
  for (const p of protocols) {
    const s = r.byProto[p];
    if (s.sessions === 0) out.push(`${p}: no session completed`);
    for (const k of ["failedSessions", "lost", "truncated", "crossed", "errors"] as const) {
      if (s[k] > 0) out.push(`${p}: ${s[k]} ${k}`);
    }
  }
  if (r.fdsEnd > r.fdsStart) out.push(`fds ${r.fdsStart} -> ${r.fdsEnd}`);
  // Under a steady load memory plateaus; a leak keeps growing. Short runs
  // end before the runtime's heap has found its size: bounded, not judged.
  if (r.rssPeak > r.rssStart + r.concurrency * RSS_PER_SESSION_MAX + RSS_PLATEAU_SLACK * 8) {
    out.push(`RSS peak ${mib(r.rssPeak)} MiB for ${r.concurrency} sessions`);
  }
  // Growth that the runtime gives back after the load was a slow ramp-up
  // (thousands of sessions still connecting), not a leak.
  const kept = r.rssEnd - r.rssStart > (r.rssPeak - r.rssStart) / 2;
  if (
    r.seconds >= RSS_PLATEAU_MIN_SECONDS && kept &&
    r.rssPeakSecondHalf > r.rssPeakFirstHalf * RSS_PLATEAU_FACTOR + RSS_PLATEAU_SLACK
  ) {
    out.push(`RSS still growing: peak ${mib(r.rssPeakFirstHalf)} MiB in the first half, ${mib(r.rssPeakSecondHalf)} MiB in the second`);
  }
  if (r.rssEnd > r.rssPeak + RSS_PLATEAU_SLACK) out.push(`RSS grew after the load: ${mib(r.rssEnd)} MiB`);
  if (r.errorLines > 0) out.push(`${r.errorLines} error lines in mailgate's log`);
  return out;
}

export function table(results: TargetResult[], protocols: Proto[]): string {
  const rows = [
    "| target | proto | sessions | failed | transfers | MiB down | MiB up | lost | truncated | crossed | errors |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const r of results) {
    for (const p of protocols) {
      const s = r.byProto[p];
      rows.push(`| ${r.target} | ${p} | ${s.sessions} | ${s.failedSessions} | ${s.transfers} | ${mib(s.bytesDown)} | ${mib(s.bytesUp)} | ${s.lost} | ${s.truncated} | ${s.crossed} | ${s.errors} |`);
    }
  }
  rows.push(
    "",
    "| target | concurrency | seconds | RSS start | peak 1st half | peak 2nd half | RSS end (MiB) | fds start | fds peak | fds end | error lines |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  );
  for (const r of results) {
    rows.push(`| ${r.target} | ${r.concurrency} | ${r.seconds} | ${mib(r.rssStart)} | ${mib(r.rssPeakFirstHalf)} | ${mib(r.rssPeakSecondHalf)} | ${mib(r.rssEnd)} | ${r.fdsStart} | ${r.fdsPeak} | ${r.fdsEnd} | ${r.errorLines} |`);
  }
  return rows.join("\n");
}
