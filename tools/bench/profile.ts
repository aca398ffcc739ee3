// CPU profile of mailgate under one benchmark load, to find where its time
// goes. Same set-up as tools/bench.ts (lean backend, auth service and load
// generator in their own processes; worker_processes 1):
//
//   deno run -A --unstable-net tools/bench/profile.ts --target=deno|bun --load=imap|pop3|smtp|tls|tlsec|down|up
//        [--duration=ms] [--mib=N] [--out=file.cpuprofile] [--auth-keepalive=N]
//   ... --strace: instead of a CPU profile, count the proxy's system calls
//        during the load (strace -c -f) and print them per session
//   ... --perf: perf record -g on the proxy during the load; CPU by shared
//        object (kernel, runtime, libc, JIT) and by symbol
//   ... --load=memory [--sessions=N]: RSS per idle session, and on Deno the
//        part of it that is V8 heap (after a forced GC), via the inspector
//
// Deno: mailgate runs with --inspect on a loopback port and is profiled
// through the inspector's Profiler domain (Deno 2.9 has no --cpu-prof).
// Bun: mailgate runs with --cpu-prof and writes the profile when it exits
// (SIGTERM). Prints a markdown summary (self and inclusive time per
// function, self time per file) and writes the .cpuprofile.

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { freePorts } from "../../tests/helpers/ports.ts";
import { benchConfig, type BenchPorts } from "./config.ts";
import { type CpuProfile, markdown } from "./cpuprofile.ts";
import { LOADGEN, loginStorm, type Parties, relay, warmUp } from "./loads.ts";
import { treeRssBytes } from "./proc_stats.ts";
import { BUN, DENO, ROOT, TLS_DIR } from "./paths.ts";
import { start, type Started, stopAll } from "./processes.ts";
import { tryGreeting } from "./cold_start.ts";

const argv = process.argv.slice(2);
const opt = (name: string, def: string) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const TARGET = opt("target", "deno") as "deno" | "bun";
const STRACE = argv.includes("--strace");
/** perf record of the proxy during the load: time per shared object and per symbol, kernel included. */
const PERF = argv.includes("--perf");
/** Either way the proxy runs without a profiler of its own. */
const PLAIN = STRACE || PERF;
const LOAD = opt("load", "imap");
const DURATION_MS = Number(opt("duration", "5000"));
const MIB = Number(opt("mib", "1024"));
/** Written outside the tree unless --out says otherwise. */
const OUT = opt("out", join(tmpdir(), `mailgate-${TARGET}-${LOAD}.cpuprofile`));
/** Inspector sampling interval (µs); Bun's --cpu-prof default is 1000. */
const SAMPLE_US = 250;

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
async function inspector(port: number) {
  let list: { webSocketDebuggerUrl: string }[] = [];
  for (let i = 0; i < 100 && list.length === 0; i++) {
    try {
      list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (list.length === 0) throw new Error("no inspector target");
  const ws = new WebSocket(list[0].webSocketDebuggerUrl);
  await new Promise((r, j) => {
    ws.onopen = r;
    ws.onerror = j;
  });
  let id = 0;
  const pending = new Map<number, (v: Record<string, unknown>) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(String(e.data));
    if (m.id !== undefined) pending.get(m.id)?.(m.result ?? m.error);
  };
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<Record<string, unknown>>((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { call, close: () => ws.close() };
}

/** RSS and (Deno) V8 heap before and while n idle sessions are held, after forced GCs. */
async function memoryBreakdown(
  proxy: Started,
  cdp: Awaited<ReturnType<typeof inspector>> | null,
  port: number,
  n: number,
): Promise<string> {
  const settle = () => new Promise((r) => setTimeout(r, 1000));
  const sample = async () => {
    if (cdp) await cdp.call("HeapProfiler.collectGarbage");
    await settle();
    const heap = cdp ? await cdp.call("Runtime.getHeapUsage") : null;
    return {
      rss: treeRssBytes(proxy.pid),
      heap: heap ? (heap.usedSize as number) : 0,
      total: heap ? (heap.totalSize as number) : 0,
    };
  };
  if (cdp) await cdp.call("HeapProfiler.enable");
  const a = await sample();
  const g = start("loadgen hold", BUN, [
    LOADGEN,
    JSON.stringify({ mode: "hold", port, n, concurrency: 100 }),
  ]);
  try {
    const held = await g.next(120_000, "held sessions");
    const b = await sample();
    g.send("release");
    await g.next(60_000, "release");
    const k = (x: number) => (x / Number(held.held) / 1024).toFixed(1);
    return `${held.held} idle sessions: RSS +${k(b.rss - a.rss)} KiB/session` +
      (cdp
        ? `, V8 heap used +${k(b.heap - a.heap)} KiB/session (heap reserved +${
          k(b.total - a.total)
        }), ` +
          `outside the V8 heap +${k(b.rss - a.rss - (b.total - a.total))} KiB/session`
        : "");
  } finally {
    await g.stop();
  }
}

/** Runs `load` while `cmd` (a tracer attached to the proxy) records; the tracer ends with SIGINT. */
async function traced<T>(cmd: string, args: string[], load: () => Promise<T>): Promise<T> {
  const tracer = spawn(cmd, args, { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 500)); // attached
  try {
    return await load();
  } finally {
    tracer.kill("SIGINT");
    await new Promise((res) => tracer.once("exit", res));
  }
}

/** strace -c -f on the proxy during one login storm: calls per session, most first. */
async function syscallsPerSession(
  proxy: Started,
  parties: Parties,
  ports: BenchPorts,
): Promise<string> {
  const out = join(tmpdir(), `mailgate-strace-${process.pid}.txt`);
  const [port, proto, tls] = stormOf(ports);
  const r = await traced(
    "strace",
    ["-c", "-f", "-o", out, "-p", String(proxy.pid)],
    () => loginStorm(parties, port, proto, tls, 32, DURATION_MS),
  );
  const rows: string[] = [];
  let total = 0;
  for (const line of readFileSync(out, "utf8").split("\n")) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line);
    if (!m || m[2] === "total") continue;
    total += Number(m[1]);
    rows.push(`| ${m[2]} | ${(Number(m[1]) / r.sessions).toFixed(2)} |`);
  }
  rmSync(out, { force: true });
  return `## system calls of mailgate on ${TARGET}, load ${LOAD}: ${r.sessions} sessions, ` +
    `${(total / r.sessions).toFixed(1)} per session (strace slows it: ${
      r.perSec.toFixed(0)
    }/s)\n\n` +
    `| syscall | per session |\n|---|---:|\n${rows.join("\n")}`;
}

/** Port, protocol and TLS of a login --load (tls: RSA certificate, tlsec: ECDSA). */
function stormOf(ports: BenchPorts): [number, "imap" | "pop3" | "smtp", boolean] {
  if (LOAD === "tls") return [ports.imaps, "imap", true];
  if (LOAD === "tlsec") return [ports.imapsEc, "imap", true];
  const proto = LOAD as "imap" | "pop3" | "smtp";
  return [ports[proto], proto, false];
}

/** The storm or relay of --load, as the profile runs it. */
function runLoad(parties: Parties, ports: BenchPorts) {
  if (LOAD === "down" || LOAD === "up") return relay(parties, ports, LOAD, MIB * 2 ** 20);
  const [port, proto, tls] = stormOf(ports);
  return loginStorm(parties, port, proto, tls, tls ? 128 : 32, DURATION_MS);
}

/**
 * perf record -g on the proxy during the load, then where its CPU went: by
 * shared object ([kernel.kallsyms], the runtime binary, libc, JIT code) and
 * by symbol. The JS profilers only see samples with JavaScript on the stack;
 * TLS handshakes and the event loop run without, so this is the view that
 * shows them.
 */
async function perfBreakdown(
  proxy: Started,
  parties: Parties,
  ports: BenchPorts,
): Promise<string> {
  const out = join(tmpdir(), `mailgate-perf-${process.pid}.data`);
  const result = await traced<unknown>("perf", [
    "record",
    "-F",
    "1999",
    "-g",
    "-o",
    out,
    "-p",
    String(proxy.pid),
  ], () => runLoad(parties, ports));
  const report = (sort: string, n: number) => {
    const r = spawnSync("perf", [
      "report",
      "-i",
      out,
      "--stdio",
      "--no-children",
      "--sort",
      sort,
      "-g",
      "none",
    ], {
      encoding: "utf8",
      maxBuffer: 64 * 2 ** 20,
    });
    return (r.stdout ?? "").split("\n").filter((l) => /^\s+[\d.]+%/.test(l)).slice(0, n).join("\n");
  };
  const text = `## perf of mailgate on ${TARGET}, load ${LOAD}\n\n` +
    "```\n" + JSON.stringify(result) + "\n```\n\nby shared object:\n```\n" + report("dso", 12) +
    "\n```\n\nby symbol:\n```\n" + report("dso,sym", 40) + "\n```";
  rmSync(out, { force: true });
  return text;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "mailgate-prof-"));
  try {
    const [imap, pop3, smtp, imaps, imapsEc, imapCache, inspectPort] = await freePorts(7);
    const ports: BenchPorts = { imap, pop3, smtp, imaps, imapsEc, imapCache };
    const backend = start("backend", BUN, [join(ROOT, "tools/bench/backend.ts")]);
    const bports = await backend.next(20_000, "backend ports");
    const auth = start("auth", BUN, [
      join(ROOT, "tools/bench/auth_server.ts"),
      JSON.stringify(bports),
    ]);
    const authPort = (await auth.next(20_000, "auth port")).port as number;
    const conf = join(dir, "bench.conf");
    writeFileSync(
      conf,
      benchConfig({
        workers: "1",
        ports,
        authPort,
        cert: join(TLS_DIR, "server.pem"),
        key: join(TLS_DIR, "server.key"),
        ecCert: join(TLS_DIR, "server_ec.pem"),
        ecKey: join(TLS_DIR, "server_ec.key"),
        workerConnections: 19_990,
        authKeepalive: Number(opt("auth-keepalive", "0")),
      }),
    );
    const prefix = join(dir, "prefix");
    mkdirSync(prefix);
    const profDir = join(dir, "prof");
    const main = join(ROOT, "main.ts");
    const args = ["-p", prefix, "-c", conf];
    const proxy: Started = PLAIN
      ? start(
        "mailgate",
        TARGET === "deno" ? DENO : BUN,
        TARGET === "deno" ? ["run", "-A", "--unstable-net", main, ...args] : [main, ...args],
      )
      : TARGET === "deno"
      ? start("mailgate", DENO, [
        "run",
        "-A",
        "--unstable-net",
        `--inspect=127.0.0.1:${inspectPort}`,
        main,
        ...args,
      ])
      : start("mailgate", BUN, ["--cpu-prof", `--cpu-prof-dir=${profDir}`, main, ...args]);
    for (let i = 0; i < 1000 && !(await tryGreeting(imap)); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const parties = { proxy, auth, backend };
    await warmUp(parties, ports, 500);
    const cdp = TARGET === "deno" && !PLAIN ? await inspector(inspectPort) : null;
    if (STRACE) {
      console.log(await syscallsPerSession(proxy, parties, ports));
      return;
    }
    if (PERF) {
      console.log(await perfBreakdown(proxy, parties, ports));
      return;
    }
    if (LOAD === "memory") {
      console.log(await memoryBreakdown(proxy, cdp, imap, Number(opt("sessions", "2000"))));
      cdp?.close();
      return;
    }
    if (cdp) {
      await cdp.call("Profiler.enable");
      await cdp.call("Profiler.setSamplingInterval", { interval: SAMPLE_US });
      await cdp.call("Profiler.start");
    }
    const t0 = performance.now();
    const result = await runLoad(parties, ports);
    const ms = performance.now() - t0;
    let profile: CpuProfile;
    if (cdp) {
      profile = (await cdp.call("Profiler.stop")).profile as CpuProfile;
      cdp.close();
      await proxy.stop();
    } else {
      await proxy.stop();
      const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
      if (!file) throw new Error("bun wrote no .cpuprofile");
      profile = JSON.parse(readFileSync(join(profDir, file), "utf8"));
    }
    writeFileSync(OUT, JSON.stringify(profile));
    console.log(`## mailgate on ${TARGET}, load ${LOAD} (${ms.toFixed(0)} ms)\n`);
    console.log("```\n" + JSON.stringify(result) + "\n```\n");
    console.log(markdown(profile, 30));
    console.error(`profile written to ${OUT}`);
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
