// Measures the runtime adapter + relay as a mail proxy on loopback:
//   (a) idle memory per proxied session (proxy RSS before/after N sessions
//       that have both legs open and have relayed the backend's greeting);
//   (b) relay throughput, backend->client and client->backend.
// This process is the proxy (adapter + relay only). The backend and the load
// client are two more Node processes (the same script in two roles), so the
// proxy's RSS holds nothing else and neither peer shares a core's worth of
// work with the other.
//
//   deno run -A --unstable-net --v8-flags=--expose-gc tools/measure_adapters.ts
//   bun tools/measure_adapters.ts
// Options: --sessions=2000 --mib=512 --adapter=<path to an adapter module>
//          --label=<row label>
// Prints one markdown table row set (header included).

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import process from "node:process";
import { createInterface } from "node:readline";
import type { Conn, Runtime } from "../lib/runtime/types.ts";
import { relay } from "../lib/proxy/relay.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";

function opt(name: string, def: string): string {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
}

const SESSIONS = Number(opt("sessions", "2000"));
const MIB = Number(opt("mib", "512"));
const ADAPTER = opt("adapter", isBun ? "../lib/runtime/bun/mod.ts" : "../lib/runtime/deno/mod.ts");
const LABEL = opt("label", "");
/** Every wait in this tool is bounded. */
const STEP_TIMEOUT_MS = 120_000;
const SETTLE_MS = 1000;

// The backend or the load client (Node, CommonJS; role in argv). Commands
// on stdin, one JSON object per line; answers on stdout likewise.
const CHILD = String.raw`
const net = require("net");
const send = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const GREETING = Buffer.from("* OK measure backend ready\r\n");
const BLOCK = Buffer.alloc(1024 * 1024, 0x61);
const role = process.argv[1];
let mode = { kind: "idle" };
const backend = role !== "backend" ? null : net.createServer((s) => {
  s.on("error", () => {});
  s.setNoDelay(true);
  s.write(GREETING);
  const m = mode;
  if (m.kind === "down") {
    let left = m.bytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, BLOCK.length);
        left -= n;
        if (!s.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) return s.once("drain", pump);
      }
      s.end();
    };
    pump();
  } else if (m.kind === "up") {
    let got = 0;
    s.on("data", (d) => { got += d.length; if (got >= m.bytes && !m.finished) { m.finished = true; send({ upDone: performance.now() + performance.timeOrigin }); } });
  } else s.on("data", () => {});
});
if (backend) backend.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => send({ backend: backend.address().port }));
let clients = [];
function openOne(port) {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: "127.0.0.1", port });
    c.on("error", reject);
    c.once("data", () => resolve(c));
  });
}
async function open(port, n) {
  const t0 = Date.now();
  const CONC = 200;
  for (let i = 0; i < n; i += CONC) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + CONC); k++) batch.push(openOne(port));
    clients.push(...await Promise.all(batch));
  }
  return Date.now() - t0;
}
function down(port, bytes) {
  return new Promise((resolve, reject) => {
    const want = bytes + GREETING.length;
    let got = 0, t0 = 0;
    const c = net.connect({ host: "127.0.0.1", port });
    c.on("error", reject);
    c.on("data", (d) => {
      if (t0 === 0) t0 = performance.now();
      got += d.length;
      if (got >= want) { const ms = performance.now() - t0; c.destroy(); resolve(ms); }
    });
  });
}
/** Sends bytes after the greeting; resolves with the (absolute) start time. */
function up(port, bytes) {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: "127.0.0.1", port });
    c.on("error", reject);
    c.once("data", () => {
      resolve(performance.now() + performance.timeOrigin);
      let left = bytes;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, BLOCK.length);
          left -= n;
          if (!c.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) return c.once("drain", pump);
        }
      };
      pump();
    });
    upSockets.push(c);
  });
}
const upSockets = [];
require("readline").createInterface({ input: process.stdin }).on("line", async (line) => {
  const m = JSON.parse(line);
  try {
    if (m.cmd === "open") send({ opened: clients.length + 0, ms: await open(m.port, m.n) });
    else if (m.cmd === "closeAll") { for (const c of clients) c.destroy(); clients = []; send({ closed: true }); }
    else if (m.cmd === "mode") { mode = { kind: m.kind, bytes: m.bytes, finished: false }; send({ mode: m.kind }); }
    else if (m.cmd === "down") send({ ms: await down(m.port, m.bytes) });
    else if (m.cmd === "up") send({ start: await up(m.port, m.bytes) });
    else if (m.cmd === "upEnd") { for (const c of upSockets.splice(0)) c.destroy(); send({ ok: true }); }
    else if (m.cmd === "exit") process.exit(0);
  } catch (e) { send({ error: String(e) }); }
});
`;

interface Peer {
  answer(what: string): Promise<Record<string, unknown>>;
  ask(cmd: Record<string, unknown>): Promise<Record<string, unknown>>;
  stop(): void;
}

/** Spawns the peer script in a role and talks to it line by line. */
function peer(role: "backend" | "client"): Peer {
  const child = spawn("node", ["-e", CHILD, role], { stdio: ["pipe", "pipe", "inherit"] });
  const answers: Record<string, unknown>[] = [];
  const waiters: ((a: Record<string, unknown>) => void)[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const a = JSON.parse(line) as Record<string, unknown>;
    const w = waiters.shift();
    if (w) w(a);
    else answers.push(a);
  });
  const answer = (what: string) =>
    within(
      new Promise<Record<string, unknown>>((r) => {
        const a = answers.shift();
        if (a) r(a);
        else waiters.push(r);
      }),
      `${role} ${what}`,
    ).then((a) => {
      if (a.error) throw new Error(`${role} ${what}: ${a.error}`);
      return a;
    });
  return {
    answer,
    ask(cmd) {
      child.stdin!.write(JSON.stringify(cmd) + "\n");
      return answer(String(cmd.cmd));
    },
    stop() {
      child.stdin!.write(JSON.stringify({ cmd: "exit" }) + "\n");
      setTimeout(() => child.kill("SIGKILL"), 2000).unref?.();
    },
  };
}

function rssBytes(field: "VmRSS" | "VmHWM"): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
      fs.readFileSync("/proc/self/status", "utf8"),
    );
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return process.memoryUsage().rss;
}

function collectGarbage(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => {
      t = setTimeout(
        () => rej(new Error(`${what}: no answer within ${STEP_TIMEOUT_MS} ms`)),
        STEP_TIMEOUT_MS,
      );
    }),
  ]);
}

async function main() {
  const { runtime } = (await import(ADAPTER)) as { runtime: Runtime };
  const backendPeer = peer("backend");
  const clientPeer = peer("client");
  try {
    const backendPort = (await backendPeer.answer("port")).backend as number;
    const ask = clientPeer.ask;
    let active = 0;
    const listener = await runtime.listen({
      kind: "tcp",
      host: "127.0.0.1",
      port: 0,
      backlog: 4096,
    }, (client: Conn) => {
      active++;
      runtime.connect({ kind: "tcp", host: "127.0.0.1", port: backendPort, timeoutMs: 10_000 })
        .then(
          (backend) => relay(client, backend, { timeoutMs: 3_600_000, onEnd: () => active-- }),
          () => {
            active--;
            client.destroy();
          },
        );
    });
    const port = (listener.addr as { port: number }).port;
    const drained = async () => {
      for (let i = 0; i < STEP_TIMEOUT_MS / 50 && active > 0; i++) await sleep(50);
      if (active > 0) throw new Error(`${active} sessions did not end`);
    };

    // Warm-up (code paths, JIT, allocator pools), then the idle measurement.
    await ask({ cmd: "open", port, n: 200 });
    await ask({ cmd: "closeAll" });
    await drained();
    await sleep(SETTLE_MS);
    collectGarbage();
    await sleep(200);
    const before = rssBytes("VmRSS");
    const opened = await ask({ cmd: "open", port, n: SESSIONS });
    await sleep(SETTLE_MS);
    collectGarbage();
    await sleep(200);
    const after = rssBytes("VmRSS");
    await ask({ cmd: "closeAll" });
    await drained();

    const bytes = MIB * 1024 * 1024;
    await backendPeer.ask({ cmd: "mode", kind: "down", bytes });
    const downMs = (await ask({ cmd: "down", port, bytes })).ms as number;
    await drained();
    await backendPeer.ask({ cmd: "mode", kind: "up", bytes });
    const upStart = (await ask({ cmd: "up", port, bytes })).start as number;
    const upMs = ((await backendPeer.answer("upDone")).upDone as number) - upStart;
    await ask({ cmd: "upEnd" });
    await drained();
    await backendPeer.ask({ cmd: "mode", kind: "idle", bytes: 0 });
    const peak = rssBytes("VmHWM");
    listener.close();

    const mb = (n: number) => (n / 1048576).toFixed(1);
    const rate = (ms: number) => (bytes / 1048576 / (ms / 1000)).toFixed(0);
    const label = LABEL || `${runtime.name} ${runtime.version}`;
    console.log(
      `| Proxy | Idle sessions | RSS before → after (MiB) | **Per session (KiB)** | Open time (ms) | ` +
        `Backend→client ${MIB} MiB (MiB/s) | Client→backend ${MIB} MiB (MiB/s) | Peak RSS (MiB) |`,
    );
    console.log("|---|---|---|---|---|---|---|---|");
    console.log(
      `| ${label} | ${SESSIONS} | ${mb(before)} → ${mb(after)} | **${
        ((after - before) / SESSIONS / 1024).toFixed(1)
      }** | ` +
        `${opened.ms} | ${rate(downMs)} | ${rate(upMs)} | ${mb(peak)} |`,
    );
  } finally {
    backendPeer.stop();
    clientPeer.stop();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
