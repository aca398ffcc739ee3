// The loads, run against one started proxy. Each runs the generator in its
// own process (bun tools/bench/loadgen.ts) and samples the CPU of the proxy
// tree, the auth service and the backend around it, so the cost of every
// party is known and the proxy's is its own.

import { join } from "node:path";
import { BUN, ROOT } from "./paths.ts";
import { start, type Started } from "./processes.ts";
import { treeCpuSeconds, treeRssBytes } from "./proc_stats.ts";
import type { LoadJob } from "./loadgen.ts";
import type { BenchPorts } from "./config.ts";
import type { Proto } from "./dialog.ts";

export const LOADGEN = join(ROOT, "tools", "bench", "loadgen.ts");
/** Beyond a job's own duration, how long its generator may take to report. */
const REPORT_SLACK_MS = 60_000;
/** The shortest wait before taking RSS (timers, sockets settle). */
const MEMORY_SETTLE_MS = 1000;

export interface Parties {
  proxy: Started;
  auth: Started;
  backend: Started;
}

export interface LoginResult {
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  sessions: number;
  errors: number;
  firstError: string | null;
  /** CPU milliseconds per session: proxy tree, generator, auth service, backend. */
  proxyCpuMs: number;
  genCpuMs: number;
  authCpuMs: number;
  backendCpuMs: number;
}

export interface RelayResult {
  mbPerSec: number;
  bytes: number;
  /** Proxy CPU seconds per 10^9 bytes relayed. */
  proxyCpuSPerGB: number;
  genCpuSPerGB: number;
  backendCpuSPerGB: number;
}

export interface MemoryResult {
  sessions: number;
  errors: number;
  rssBefore: number;
  rssAfter: number;
  /** One second after the sessions are held. */
  bytesPerSessionFirst: number;
  /** After the settle time. */
  bytesPerSession: number;
  openMs: number;
}

/** Runs one generator job to its result line. */
async function generate(job: LoadJob, timeoutMs: number): Promise<Record<string, unknown>> {
  const g = start(`loadgen ${job.mode}`, BUN, [LOADGEN, JSON.stringify(job)]);
  try {
    const r = await g.next(timeoutMs, `${job.mode} result`);
    if (typeof r.error === "string") throw new Error(`loadgen ${job.mode}: ${r.error}`);
    return r;
  } finally {
    await g.stop();
  }
}

function cpuOf(p: Parties) {
  return {
    proxy: treeCpuSeconds(p.proxy.pid),
    auth: treeCpuSeconds(p.auth.pid),
    backend: treeCpuSeconds(p.backend.pid),
  };
}

export async function loginStorm(
  p: Parties,
  port: number,
  proto: Proto,
  tls: boolean,
  concurrency: number,
  durationMs: number,
): Promise<LoginResult> {
  const maxSessions = Math.ceil(durationMs * 50); // 50k sessions/s is far above any proxy here
  const job: LoadJob = { mode: "login", port, proto, tls, concurrency, durationMs, maxSessions };
  const c0 = cpuOf(p);
  const r = await generate(job, durationMs + REPORT_SLACK_MS);
  const c1 = cpuOf(p);
  const n = Math.max(1, r.sessions as number);
  const per = (a: number, b: number) => ((b - a) * 1000) / n;
  return {
    perSec: r.perSec as number,
    p50Ms: r.p50Ms as number,
    p99Ms: r.p99Ms as number,
    sessions: r.sessions as number,
    errors: r.errors as number,
    firstError: r.firstError as string | null,
    proxyCpuMs: per(c0.proxy, c1.proxy),
    genCpuMs: ((r.cpuS as number) * 1000) / n,
    authCpuMs: per(c0.auth, c1.auth),
    backendCpuMs: per(c0.backend, c1.backend),
  };
}

/**
 * Milliseconds per command of a client that sends one command and waits for
 * its reply (generator latency mode), through the proxy on `port` or, with
 * `direct`, straight to the lean backend.
 */
export async function latency(
  port: number,
  proto: Proto,
  tls: boolean,
  commands: number,
  direct = false,
): Promise<number> {
  const job: LoadJob = { mode: "latency", port, proto, tls, commands, direct };
  // A proxy that waits for delayed ACKs takes ~40 ms per command.
  const r = await generate(job, commands * 100 + REPORT_SLACK_MS);
  return r.msPerCommand as number;
}

/** A short login storm whose numbers are thrown away (JIT, pools, first-use paths). */
export async function warmUp(p: Parties, ports: BenchPorts, ms: number): Promise<void> {
  for (
    const [proto, port, tls] of [
      ["imap", ports.imap, false],
      ["pop3", ports.pop3, false],
      ["smtp", ports.smtp, false],
      ["imap", ports.imaps, true],
      ["imap", ports.imapsEc, true],
    ] as const
  ) {
    await loginStorm(p, port, proto, tls, 8, ms);
  }
}

export async function relay(
  p: Parties,
  ports: BenchPorts,
  dir: "down" | "up",
  bytes: number,
): Promise<RelayResult> {
  const job: LoadJob = { mode: dir, port: dir === "down" ? ports.imap : ports.smtp, bytes };
  const c0 = cpuOf(p);
  const r = await generate(job, 300_000 + REPORT_SLACK_MS);
  const c1 = cpuOf(p);
  const moved = r.bytes as number;
  const gb = moved / 1e9;
  return {
    mbPerSec: moved / 1e6 / ((r.ms as number) / 1000),
    bytes: moved,
    proxyCpuSPerGB: (c1.proxy - c0.proxy) / gb,
    genCpuSPerGB: (r.cpuS as number) / gb,
    backendCpuSPerGB: (c1.backend - c0.backend) / gb,
  };
}

/**
 * Proxy RSS per idle session, twice: one second after the sessions are
 * held (what nginx, which frees per request, shows at once) and after
 * `settleMs` of idleness. The garbage-collected runtimes still hold the
 * login phase's garbage at first; JSC and V8's memory reducer return it
 * once the process has been idle for a while, V8 only if it has run a
 * major GC since (measured on Deno: 18.3 KB per session for 25 s, then
 * 5.2 KB; in another run still 22 KB after 45 s). The baseline is taken after the same
 * idle time, so garbage from earlier loads is not counted against the
 * held sessions, nor credited to them when it is collected.
 */
export async function memory(p: Parties, port: number, n: number, settleMs: number): Promise<MemoryResult> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(Math.max(MEMORY_SETTLE_MS, settleMs));
  const rssBefore = treeRssBytes(p.proxy.pid);
  const job: LoadJob = { mode: "hold", port, n, concurrency: 100 };
  const g = start("loadgen hold", BUN, [LOADGEN, JSON.stringify(job)]);
  try {
    const held = await g.next(120_000 + n * 20, "held sessions");
    if (typeof held.error === "string") throw new Error(`loadgen hold: ${held.error}`);
    const heldAt = performance.now();
    await sleep(MEMORY_SETTLE_MS);
    const rssFirst = treeRssBytes(p.proxy.pid);
    await sleep(Math.max(0, settleMs - (performance.now() - heldAt)));
    const rssAfter = treeRssBytes(p.proxy.pid);
    g.send("release");
    await g.next(60_000, "release");
    const sessions = Math.max(1, held.held as number);
    return {
      sessions: held.held as number,
      errors: held.errors as number,
      rssBefore,
      rssAfter,
      bytesPerSessionFirst: (rssFirst - rssBefore) / sessions,
      bytesPerSession: (rssAfter - rssBefore) / sessions,
      openMs: held.ms as number,
    };
  } finally {
    await g.stop();
  }
}
