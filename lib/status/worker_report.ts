// In a worker (worker_processes > 1): send the master this process's
// metric snapshot and recent error lines once a second, one line on the
// stdout pipe the master already reads (lib/master.ts). A second of delay
// is what the status page and a scrape see; nothing is sent per event.

import process from "node:process";
import { processSnapshot } from "../metrics/process.ts";
import { REPORT_PREFIX } from "./aggregate.ts";
import { recentErrors } from "./recent_errors.ts";

export const REPORT_INTERVAL_MS = 1000;

export function sendReport(runtime: string): void {
  process.stdout.write(
    `${REPORT_PREFIX}${JSON.stringify({ m: processSnapshot(runtime), e: recentErrors() })}\n`,
  );
}

export function startWorkerReports(runtime: string): void {
  sendReport(runtime);
  const timer = setInterval(() => sendReport(runtime), REPORT_INTERVAL_MS);
  (timer as { unref?: () => void }).unref?.();
}
