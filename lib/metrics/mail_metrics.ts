// mailgate's metrics: one registry per process, living across reloads (the
// module is loaded once; a reload builds new servers, not new counters).
// The session calls the hooks below; each resolves its label set once per
// session (a WeakMap on the listen entry, small maps keyed by protocol and
// mechanism) and then only increments numbers.

import type { ListenConfig } from "../config/types.ts";
import { type Counter, type Gauge, type Histogram, Registry } from "./registry.ts";

export const registry = new Registry();

/** Login outcomes as the issue names them; "limited" is counted once rate limits exist. */
export type LoginOutcome = "ok" | "refused" | "auth-error" | "backend-error" | "limited";

export const accepted = registry.counter(
  "mailgate_connections_accepted",
  "Client connections accepted, by protocol and listen address.",
  ["protocol", "listener"],
);
export const open = registry.gauge(
  "mailgate_connections_open",
  "Client connections open now, by protocol and listen address.",
  ["protocol", "listener"],
);
export const logins = registry.counter(
  "mailgate_logins",
  "Login attempts by protocol, SASL mechanism (or the protocol's plain command) and outcome.",
  ["protocol", "mechanism", "outcome"],
);
export const authDuration = registry.histogram(
  "mailgate_auth_duration_seconds",
  "Time the auth service (auth_http or auth_table) took to answer, by protocol.",
  ["protocol"],
  [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
);
/** Upstreams: the first 100 names, then "other" (a bounded number of series). */
export const UPSTREAM_CAP = 100;
export const backendErrors = registry.counter(
  "mailgate_backend_errors",
  'Backend failures by upstream (first 100 names, then "other") and stage (connect, login).',
  ["upstream", "stage"],
  { cap: UPSTREAM_CAP * 2, capLabel: "upstream" },
);
export const relayed = registry.counter(
  "mailgate_relayed_bytes",
  "Bytes relayed after login; direction up = client to backend, down = backend to client.",
  ["protocol", "direction"],
);
export const tlsHandshakes = registry.counter(
  "mailgate_tls_handshakes",
  "Completed client-side TLS handshakes by protocol version.",
  ["version"],
);
export const tlsFailures = registry.counter(
  "mailgate_tls_handshake_failures",
  "Failed client-side TLS handshakes, by protocol.",
  ["protocol"],
);
export const sessionsEnded = registry.counter(
  "mailgate_sessions_ended",
  "Sessions ended, by protocol and reason (the access log's outcome).",
  ["protocol", "reason"],
);
export const buildInfo = registry.gauge(
  "mailgate_build_info",
  "Always 1; the labels say which mailgate and which runtime.",
  ["version", "runtime"],
);
export const startTime = registry.gauge(
  "process_start_time_seconds",
  "Start time of the process, Unix seconds.",
);
export const rss = registry.gauge(
  "process_resident_memory_bytes",
  "Resident memory size in bytes.",
);
export const openFds = registry.gauge("process_open_fds", "Number of open file descriptors.");

/** The per-listener counters a session touches; made once per listen entry. */
export interface ListenerMetrics {
  accepted: Counter;
  open: Gauge;
  protocol: string;
  listener: string;
  ended: Map<string, Counter>;
  up: Counter;
  down: Counter;
  auth: Histogram;
  tlsFailed: Counter;
}

const byListen = new WeakMap<ListenConfig, ListenerMetrics>();

function listenName(l: ListenConfig): string {
  const a = l.address;
  if (a.kind === "unix") return `unix:${a.path}`;
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export function listenerMetrics(protocol: string, l: ListenConfig): ListenerMetrics {
  let m = byListen.get(l);
  if (m) return m;
  const listener = listenName(l);
  m = {
    accepted: accepted.labels(protocol, listener),
    open: open.labels(protocol, listener),
    protocol,
    listener,
    ended: new Map(),
    up: relayed.labels(protocol, "up"),
    down: relayed.labels(protocol, "down"),
    auth: authDuration.labels(protocol),
    tlsFailed: tlsFailures.labels(protocol),
  };
  byListen.set(l, m);
  return m;
}

export function sessionEnded(m: ListenerMetrics, reason: string, up: number, down: number): void {
  m.open.dec();
  let c = m.ended.get(reason);
  if (!c) m.ended.set(reason, c = sessionsEnded.labels(m.protocol, reason));
  c.inc();
  if (up > 0) m.up.inc(up);
  if (down > 0) m.down.inc(down);
}

const loginCounters = new Map<string, Map<string, Map<LoginOutcome, Counter>>>();

export function countLogin(protocol: string, mechanism: string, outcome: LoginOutcome): void {
  let byMech = loginCounters.get(protocol);
  if (!byMech) loginCounters.set(protocol, byMech = new Map());
  let byOutcome = byMech.get(mechanism);
  if (!byOutcome) byMech.set(mechanism, byOutcome = new Map());
  let c = byOutcome.get(outcome);
  if (!c) byOutcome.set(outcome, c = logins.labels(protocol, mechanism, outcome));
  c.inc();
}

const tlsByVersion = new Map<string, Counter>();

export function countTlsHandshake(version: string): void {
  let c = tlsByVersion.get(version);
  if (!c) tlsByVersion.set(version, c = tlsHandshakes.labels(version));
  c.inc();
}

export function countBackendError(upstream: string, stage: "connect" | "login"): void {
  backendErrors.labels(upstream, stage).inc();
}

export const upstreamLogins = registry.counter(
  "mailgate_upstream_logins",
  'Logins relayed to each upstream (first 100 names, then "other").',
  ["upstream"],
  { cap: UPSTREAM_CAP, capLabel: "upstream" },
);
const upstreamCounters = new Map<string, Counter>();

export function countUpstreamLogin(upstream: string): void {
  let c = upstreamCounters.get(upstream);
  if (!c) {
    c = upstreamLogins.labels(upstream);
    // Only names that got their own series are kept here, so this map stays bounded too.
    if (upstreamCounters.size < UPSTREAM_CAP) upstreamCounters.set(upstream, c);
  }
  c.inc();
}

// Protection (README "Protection"): the auth cache, failed-login lockouts,
// limit_conn and the shared store. The label sets are fixed (cache results,
// lockout kinds) or come from the configuration (limit_conn zones), so the
// series stay bounded; the fixed ones are made here, once.
export const authCacheLookups = registry.counter(
  "mailgate_auth_cache_lookups",
  "Auth cache lookups by result: hit (a kept OK), negative_hit (a kept refusal), miss.",
  ["result"],
);
export const cacheHit = authCacheLookups.labels("hit");
export const cacheNegativeHit = authCacheLookups.labels("negative_hit");
export const cacheMiss = authCacheLookups.labels("miss");

export const authLockouts = registry.counter(
  "mailgate_auth_lockouts",
  "Failed-login lockouts started (auth_fail_limit_ip / auth_fail_limit_user), by kind.",
  ["kind"],
);
export const lockoutIp = authLockouts.labels("ip");
export const lockoutUser = authLockouts.labels("user");

export const limitConnRefused = registry.counter(
  "mailgate_limit_conn_refused",
  "Sessions refused by limit_conn, by zone (dry-run refusals are not counted).",
  ["zone"],
);
const zoneCounters = new Map<string, Counter>();

export function countLimitConnRefused(zone: string): void {
  let c = zoneCounters.get(zone);
  if (!c) zoneCounters.set(zone, c = limitConnRefused.labels(zone));
  c.inc();
}

export const sharedStoreUp = registry.gauge(
  "mailgate_shared_store_up",
  "1 while the shared store (shared_store) is reachable, 0 while its process-local fallback is used; absent without shared_store.",
  [],
  { merge: "min" },
);
const sharedStoreOutagesFamily = registry.counter(
  "mailgate_shared_store_outages",
  "Shared store outages (each one the error log's \"unavailable\" line).",
);
export const sharedStoreOutages = sharedStoreOutagesFamily.labels();

let storeProbe: (() => { readonly state: string } | null) | null = null;
let sharedStoreSeen = false;

/** Where a snapshot reads the shared store's state from (lib/serve.ts); the probe gives null without shared_store. */
export function watchSharedStore(probe: () => { readonly state: string } | null): void {
  storeProbe = probe;
}

/** Refreshes mailgate_shared_store_up; called when a snapshot is taken (not on a timer). */
export function sampleSharedStore(): void {
  const s = storeProbe?.() ?? null;
  // Without shared_store: no series, unless one existed (a reload dropped
  // shared_store), which then reads 0 like any other local state.
  if (s === null && !sharedStoreSeen) return;
  sharedStoreSeen = true;
  sharedStoreUp.labels().set(s?.state === "shared" ? 1 : 0);
}
