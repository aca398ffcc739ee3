// Process metrics, read when a snapshot is taken (not on a timer): RSS,
// open descriptors (Linux /proc; left out where it does not exist), start
// time, and build info.

import { readdirSync } from "node:fs";
import process from "node:process";
import { NAME, VERSION } from "../version.ts";
import { buildInfo, openFds, registry, rss, sampleSharedStore, startTime } from "./mail_metrics.ts";
import type { FamilySnapshot } from "./registry.ts";

const started = Date.now() / 1000;
let info: { runtime: string } | null = null;

function countFds(): number | null {
  try {
    return readdirSync("/proc/self/fd").length - 1; // minus the one readdir itself holds
  } catch {
    return null;
  }
}

/** This process's metrics, process gauges refreshed. `runtime`: e.g. "bun 1.4.0". */
export function processSnapshot(runtime: string): FamilySnapshot[] {
  if (info === null) {
    info = { runtime };
    buildInfo.labels(`${NAME}/${VERSION}`, runtime).set(1);
  }
  startTime.labels().set(started);
  rss.labels().set(process.memoryUsage.rss());
  const fds = countFds();
  if (fds !== null) openFds.labels().set(fds);
  sampleSharedStore();
  return registry.snapshot();
}
