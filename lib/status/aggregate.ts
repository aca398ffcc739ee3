// The master's view with worker_processes > 1: each worker sends its
// metric snapshot and recent error lines over its stdout pipe once a
// second (lib/status/worker_report.ts); the master keeps the latest per
// worker and sums them. A worker that exits leaves its counters behind
// (added to `retired`), so totals never go backwards when one is restarted;
// its gauges (open connections) go with it.

import { type FamilySnapshot, mergeSnapshots } from "../metrics/registry.ts";

export interface WorkerReport {
  slot: number;
  pid: number;
  metrics: FamilySnapshot[];
  errors: string[];
}

/** Per-process families the master reports for itself, not summed from workers. */
const MASTER_ONLY = new Set(["process_start_time_seconds", "mailgate_build_info"]);

const workerPart = (f: FamilySnapshot[]) => f.filter((x) => !MASTER_ONLY.has(x.name));

export class Aggregator {
  readonly #workers = new Map<number, WorkerReport>();
  #retired: FamilySnapshot[] = [];

  report(r: WorkerReport): void {
    this.#workers.set(r.slot, r);
  }

  exited(slot: number, pid: number): void {
    const w = this.#workers.get(slot);
    if (!w || w.pid !== pid) return;
    this.#workers.delete(slot);
    this.#retired = mergeSnapshots([this.#retired, workerPart(w.metrics)], true);
  }

  /** The instance's totals: the master's own families plus every worker's, plus the retired counters. */
  total(own: FamilySnapshot[]): FamilySnapshot[] {
    const parts = [
      own,
      ...[...this.#workers.values()].map((w) => workerPart(w.metrics)),
      this.#retired,
    ];
    return mergeSnapshots(parts);
  }

  workers(): WorkerReport[] {
    return [...this.#workers.values()].sort((a, b) => a.slot - b.slot);
  }

  /** Everyone's recent error lines, newest last (the lines start with their timestamp). */
  errors(own: string[], max: number): string[] {
    const all = [...own];
    for (const w of this.#workers.values()) all.push(...w.errors);
    return all.sort().slice(-max);
  }
}

/** A worker's report line: "metrics " + JSON. */
export const REPORT_PREFIX = "metrics ";

export function parseReport(line: string, slot: number, pid: number): WorkerReport | null {
  if (!line.startsWith(REPORT_PREFIX)) return null;
  try {
    const v = JSON.parse(line.slice(REPORT_PREFIX.length)) as { m?: unknown; e?: unknown };
    if (!Array.isArray(v.m) || !Array.isArray(v.e)) return null;
    return { slot, pid, metrics: v.m as FamilySnapshot[], errors: v.e as string[] };
  } catch {
    return null;
  }
}
