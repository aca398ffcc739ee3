// Connection churn against the real mailgate process: does its RSS come
// back, or keep growing, after many short connections (issue 13)?
//
//   deno run -A --unstable-net tools/churn.ts [--targets=deno,bun] [--rounds=10]
//       [--closes=5000] [--resets=2000] [--concurrency=64] [--settle=2] [--max-seconds=170]
//       [--trace-gc]
//
// Per target: start mailgate (one IMAP listener on loopback; no connection
// reaches auth), then `rounds` rounds of `closes` connect-and-close
// connections (read the greeting, then close: a FIN) and `resets`
// connect-and-reset ones (an RST at once, SO_LINGER 0), `concurrency` at a
// time. After each round, wait `settle` seconds and print mailgate's RSS
// and open fds. A leak shows as RSS growing round after round; a runtime
// keeping freed pages shows as a level. Every connection and the whole run
// are bounded in time (the run stops at --max-seconds); mailgate is stopped
// by its pid. --trace-gc (Deno) adds the V8 heap after the last full
// collection (DENO_V8_FLAGS=--trace-gc), to tell JS objects kept alive
// from memory the process holds outside the heap.

import { connect, type Socket } from "node:net";
import process from "node:process";
import { type Running, startMailgate, type Target } from "../tests/helpers/mailgate.ts";
import { fdCount, rssBytes } from "../tests/helpers/proc_stats.ts";
import { freePorts } from "../tests/helpers/ports.ts";

function arg(name: string, def: string): string {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
}
function num(name: string, def: number): number {
  const n = Number(arg(name, String(def)));
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
  return n;
}

const targetList = arg("targets", "deno,bun").split(",").filter(Boolean) as Target[];
const ROUNDS = num("rounds", 10);
const CLOSES = num("closes", 5000);
const RESETS = num("resets", 2000);
const CONCURRENCY = Math.max(1, num("concurrency", 64));
const SETTLE_MS = num("settle", 2) * 1000;
const TRACE_GC = process.argv.includes("--trace-gc");
const DEADLINE = Date.now() + num("max-seconds", 170) * 1000;
/** One connection may not take longer than this. */
const CONN_MS = 10_000;

type Kind = "close" | "reset";

/** One connection; resolves false if it did not go as expected (refused, no greeting, timeout). */
function once(port: number, kind: Kind): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean, s: Socket) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!ok) s.destroy();
      resolve(ok);
    };
    const s = connect({ port, host: "127.0.0.1" });
    const timer = setTimeout(() => finish(false, s), CONN_MS);
    s.on("error", () => finish(false, s));
    if (kind === "reset") {
      s.once("connect", () => {
        s.resetAndDestroy();
        finish(true, s);
      });
    } else {
      // The greeting is read before closing: closing with unread bytes
      // would send an RST, not a FIN.
      s.once("data", () => {
        s.destroy();
        finish(true, s);
      });
    }
  });
}

/** `n` connections of `kind`, CONCURRENCY at a time; returns how many failed. */
async function batch(port: number, kind: Kind, n: number): Promise<number> {
  let next = 0;
  let failed = 0;
  const loop = async () => {
    while (next < n && Date.now() < DEADLINE) {
      next++;
      if (!(await once(port, kind))) failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, n) }, loop));
  return failed + (n - Math.min(next, n));
}

/** The heap before -> after of V8's last mark-compact in a --trace-gc chunk, or "". */
function lastFullGc(chunk: string): string {
  const all = [...chunk.matchAll(/Mark-Compact[^\n]*?([\d.]+ \([\d.]+\) -> [\d.]+ \([\d.]+\) MB)/g)];
  return all.length > 0 ? `heap ${all[all.length - 1][1]}` : "";
}

const mib = (b: number) => (b / 1048576).toFixed(1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function churn(target: Target): Promise<string[]> {
  const [port] = await freePorts(1);
  const conf = `
error_log stderr notice;
events { worker_connections 4096; }
mail {
  auth_http 127.0.0.1:9/auth;
  server { listen 127.0.0.1:${port}; protocol imap; }
}
`;
  const rows: string[] = [];
  let mg: Running | null = null;
  try {
    if (TRACE_GC && target === "deno") process.env.DENO_V8_FLAGS = "--trace-gc";
    mg = await startMailgate(target, conf);
    delete process.env.DENO_V8_FLAGS;
    // V8 traces on stdout; only the last mark-compact line is kept.
    let gcLine = "";
    mg.proc.stdout!.on("data", (d: Uint8Array) => {
      const m = lastFullGc(String(d));
      if (m !== "") gcLine = m;
    });
    const pid = mg.proc.pid!;
    await sleep(SETTLE_MS);
    const line = (label: string, failed = "", secs = "") => {
      let row = `| ${target} | ${label} | ${mib(rssBytes(pid))} | ${fdCount(pid)} | ${failed} | ${secs} |`;
      if (TRACE_GC) row += ` ${gcLine || "no full GC yet"} |`;
      console.log(row);
      rows.push(row);
    };
    line("start");
    for (let r = 1; r <= ROUNDS; r++) {
      if (Date.now() >= DEADLINE) {
        console.log(`(--max-seconds reached: stopped before round ${r})`);
        break;
      }
      const t0 = Date.now();
      const failed = (await batch(port, "close", CLOSES)) + (await batch(port, "reset", RESETS));
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      await sleep(SETTLE_MS);
      line(`round ${r}`, String(failed), secs);
    }
    const errors = mg.stderr().split("\n").filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    if (errors.length > 0) console.log(`${target}: ${errors.length} error lines, first: ${errors[0]}`);
  } finally {
    await mg?.stop("SIGTERM");
  }
  return rows;
}

console.log(`${ROUNDS} rounds of ${CLOSES} connect-and-close + ${RESETS} connect-and-reset, ${CONCURRENCY} at a time`);
console.log(
  "| target | after | RSS (MiB) | fds | failed | seconds |" + (TRACE_GC ? " V8 last mark-compact, used (committed) |" : "") +
    "\n|---|---|---:|---:|---:|---:|" + (TRACE_GC ? "---|" : ""),
);
for (const t of targetList) await churn(t);
