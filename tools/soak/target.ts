// One target's soak: the backend, mailgate with an auth table routing every
// user to it, `sessions` client loops until the time is up, and mailgate's
// RSS and fds sampled before, during and after the load.

import { spawnSync } from "node:child_process";
import type { Socket } from "node:net";
import process from "node:process";
import { type Running, startMailgate, type Target } from "../../tests/helpers/mailgate.ts";
import { fdCount, rssBytes, settleFds } from "../../tests/helpers/proc_stats.ts";
import { freePorts } from "../../tests/helpers/ports.ts";
import { SoakBackend, spawnBackend } from "./backend.ts";
import { emptyStats, Mismatch, openSocket, SESSIONS, Window } from "./clients.ts";
import { RSS_WARMUP_FRACTION } from "./report.ts";
import type { Proto, SoakOptions, TargetResult } from "./types.ts";
import { Closed, Reader, Timeout } from "./wire.ts";

/** fds mailgate keeps for itself (listeners, logs, runtime). */
const FD_RESERVE = 200;
/**
 * Sessions that ended on the client's side still hold their two fds for a
 * moment while a new one starts, so under churn mailgate holds more
 * sessions than there are client loops (measured: up to ~15 % more).
 */
const FD_CHURN_FACTOR = 1.25;
/** Connections being opened at once (Bun's listen backlog is 512). */
const CONNECT_WINDOW = 256;

function fdLimit(): number {
  const r = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}


export async function soakTarget(target: Target, o: SoakOptions): Promise<TargetResult> {
  const log = o.log ?? console.log;
  const concurrency = Math.max(1, Math.min(o.sessions, Math.floor((fdLimit() - FD_RESERVE) / 2 / FD_CHURN_FACTOR)));
  if (concurrency < o.sessions) log(`  ${target}: concurrency capped at ${concurrency} by the fd limit (${fdLimit()})`);
  let backend: { ports: Record<Proto, number>; stop(): Promise<void> };
  if (o.inProcessBackend) {
    const b = await new SoakBackend().start();
    backend = { ports: b.ports, stop: () => b.stop() };
  } else backend = await spawnBackend();
  const [pi, pp, ps] = await freePorts(3);
  // backlog=4096: thousands of loops reconnect at once. When the accept
  // queue overflows, the kernel drops the final ACKs and retransmits
  // SYN-ACKs with back-off, so a few sessions wait tens of seconds (a plain
  // Node server with the same client: backlog 128 -> 1,245 stalls, 4096 ->
  // none). Deno applies it; Bun's backlog is fixed at 512 (warned).
  const conf = `
error_log stderr notice;
events { worker_connections ${concurrency * 2 + 100}; }
mail {
  server_name soak.test;
  timeout 120s;
  server { listen 127.0.0.1:${pi} backlog=4096; protocol imap; auth_table imap.table; }
  server { listen 127.0.0.1:${pp} backlog=4096; protocol pop3; auth_table pop3.table; }
  server { listen 127.0.0.1:${ps} backlog=4096; protocol smtp; auth_table smtp.table; }
}
`;
  let mg: Running | null = null;
  const result: TargetResult = {
    target,
    concurrency,
    seconds: o.seconds,
    byProto: { imap: emptyStats(), pop3: emptyStats(), smtp: emptyStats() },
    rssStart: 0,
    rssPeak: 0,
    rssPeakFirstHalf: 0,
    rssPeakSecondHalf: 0,
    rssEnd: 0,
    fdsStart: 0,
    fdsPeak: 0,
    fdsEnd: 0,
    failures: [],
    errorLines: 0,
    errorSamples: [],
  };
  try {
    mg = await startMailgate(target, conf, {
      "imap.table": `* 127.0.0.1:${backend.ports.imap}\n`,
      "pop3.table": `* 127.0.0.1:${backend.ports.pop3}\n`,
      "smtp.table": `* 127.0.0.1:${backend.ports.smtp}\n`,
    });
    const pid = mg.proc.pid!;
    const port: Record<Proto, number> = { imap: pi, pop3: pp, smtp: ps };
    const win = new Window(CONNECT_WINDOW);
    const fail = (what: string) => {
      if (result.failures.length < 10) result.failures.push(what);
    };

    /** One session; its outcome goes into the protocol's stats. */
    const session = async (proto: Proto, id: number) => {
      const st = result.byProto[proto];
      let sock: Socket | null = null;
      try {
        sock = await openSocket(port[proto], win);
        await SESSIONS[proto](sock, new Reader(sock), o, st, id);
        st.sessions++;
      } catch (e) {
        st.failedSessions++;
        if (e instanceof Mismatch) st.crossed++;
        else if (e instanceof Closed) st.truncated++;
        else if (e instanceof Timeout) st.lost++;
        else st.errors++;
        fail(`${proto} session ${id}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
      } finally {
        sock?.destroy();
      }
    };

    // Warm up each protocol once, then the baseline.
    for (const p of o.protocols) await session(p, 0);
    for (const p of o.protocols) result.byProto[p] = emptyStats();
    await new Promise((r) => setTimeout(r, 300));
    result.fdsStart = fdCount(pid);
    result.rssStart = result.rssPeak = rssBytes(pid);

    const deadline = Date.now() + o.seconds * 1000;
    const half = Date.now() + (o.seconds * 1000) / 2;
    // The first part of the load is the heap's ramp-up, not part of the plateau.
    const warm = Date.now() + o.seconds * 1000 * RSS_WARMUP_FRACTION;
    const sampler = setInterval(() => {
      try {
        const now = rssBytes(pid);
        result.rssPeak = Math.max(result.rssPeak, now);
        result.fdsPeak = Math.max(result.fdsPeak, fdCount(pid));
        if (Date.now() < warm) return;
        if (Date.now() < half) result.rssPeakFirstHalf = Math.max(result.rssPeakFirstHalf, now);
        else result.rssPeakSecondHalf = Math.max(result.rssPeakSecondHalf, now);
      } catch { /* exited: reported below */ }
    }, 250);
    let nextId = 1;
    const loops = Array.from({ length: concurrency }, async (_, i) => {
      const proto = o.protocols[i % o.protocols.length];
      // Bounded by the deadline (and each session by its step timeouts).
      while (Date.now() < deadline) await session(proto, nextId++);
    });
    const progress = setInterval(() => {
      const done = o.protocols.reduce((n, p) => n + result.byProto[p].sessions, 0);
      log(`  ${target}: ${done} sessions, RSS ${(rssBytes(pid) / 2 ** 20).toFixed(0)} MiB, fds ${fdCount(pid)}`);
    }, 10_000);
    await Promise.all(loops);
    clearInterval(progress);
    clearInterval(sampler);
    // Sessions whose client gave up while mailgate was not reading it end by `timeout` at the latest.
    result.fdsEnd = await settleFds(pid, result.fdsStart, 130_000);
    // The runtime's heap gives pages back some seconds after the load
    // (V8's memory reducer); sample until it stops falling (bounded).
    result.rssEnd = rssBytes(pid);
    for (let waited = 0; waited < o.settleSeconds * 1000; waited += 1000) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = rssBytes(pid);
      if (process.env.SOAK_DEBUG) log(`  ${target}: settle ${waited / 1000 + 1}s RSS ${(now / 2 ** 20).toFixed(1)} MiB`);
      result.rssEnd = now;
    }
    const errs = mg.stderr().split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    result.errorLines = errs.length;
    result.errorSamples = errs.slice(0, 5);
  } finally {
    await mg?.stop();
    await backend.stop();
  }
  return result;
}
