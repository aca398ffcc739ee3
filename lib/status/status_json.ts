// /status.json: what the status page shows, computed from the same
// snapshot /metrics renders (so the numbers match). No secrets: counters,
// upstream names (host:port or auth_http's Auth-Server), error-log lines.

import type { FamilySnapshot } from "../metrics/registry.ts";
import type { WorkerReport } from "./aggregate.ts";
import type { Sample } from "./history.ts";

export interface StatusJson {
  time: number;
  version: string;
  runtime: string;
  /** Sessions open now, by protocol. */
  open: Record<string, number>;
  accepted: number;
  logins: { ok: number; failed: number; byOutcome: Record<string, number> };
  auth: { count: number; sumSeconds: number };
  /** Busiest upstreams by logins relayed (top 10), with their errors. */
  backends: { upstream: string; logins: number; errors: number }[];
  errors: string[];
  workers: { slot: number; pid: number; open: number; logins: number }[];
  /** Totals once a second over the last five minutes (history.ts), oldest first. */
  history: Sample[];
}

const fam = (s: FamilySnapshot[], name: string) => s.find((f) => f.name === name)?.series ?? [];
const sum = (s: FamilySnapshot[], name: string) => fam(s, name).reduce((t, x) => t + x.value, 0);

function openByProtocol(s: FamilySnapshot[]): Record<string, number> {
  const out: Record<string, number> = { imap: 0, pop3: 0, smtp: 0 };
  for (const x of fam(s, "mailgate_connections_open")) {
    out[x.labels[0]] = (out[x.labels[0]] ?? 0) + x.value;
  }
  return out;
}

export function statusJson(
  s: FamilySnapshot[],
  errors: string[],
  workers: WorkerReport[],
  history: Sample[] = [],
  now = Date.now(),
): StatusJson {
  const byOutcome: Record<string, number> = {};
  for (const x of fam(s, "mailgate_logins")) {
    byOutcome[x.labels[2]] = (byOutcome[x.labels[2]] ?? 0) + x.value;
  }
  const ok = byOutcome.ok ?? 0;
  const failed = Object.values(byOutcome).reduce((t, v) => t + v, 0) - ok;
  const errs = new Map<string, number>();
  for (const x of fam(s, "mailgate_backend_errors")) {
    errs.set(x.labels[0], (errs.get(x.labels[0]) ?? 0) + x.value);
  }
  const names = new Map<string, number>();
  for (const x of fam(s, "mailgate_upstream_logins")) names.set(x.labels[0], x.value);
  for (const k of errs.keys()) if (!names.has(k)) names.set(k, 0);
  const backends = [...names].map(([upstream, logins]) => ({
    upstream,
    logins,
    errors: errs.get(upstream) ?? 0,
  }))
    .sort((a, b) => b.logins + b.errors - (a.logins + a.errors)).slice(0, 10);
  const auth = fam(s, "mailgate_auth_duration_seconds");
  const info = fam(s, "mailgate_build_info")[0]?.labels ?? ["", ""];
  return {
    time: now,
    version: info[0],
    runtime: info[1],
    open: openByProtocol(s),
    accepted: sum(s, "mailgate_connections_accepted"),
    logins: { ok, failed, byOutcome },
    auth: {
      count: auth.reduce((t, x) => t + x.value, 0),
      sumSeconds: auth.reduce((t, x) => t + (x.sum ?? 0), 0),
    },
    backends,
    errors,
    history,
    workers: workers.map((w) => ({
      slot: w.slot,
      pid: w.pid,
      open: sum(w.metrics, "mailgate_connections_open"),
      logins: fam(w.metrics, "mailgate_logins").filter((x) => x.labels[2] === "ok").reduce(
        (t, x) => t + x.value,
        0,
      ),
    })),
  };
}

/** One history sample from a snapshot. */
export function sampleOf(s: FamilySnapshot[], now = Date.now()): Sample {
  let ok = 0;
  let all = 0;
  for (const x of fam(s, "mailgate_logins")) {
    all += x.value;
    if (x.labels[2] === "ok") ok += x.value;
  }
  return { t: now, ok, failed: all - ok, open: sum(s, "mailgate_connections_open") };
}
