// Diagnostic behind the Deno adapter's move to node:net (README, "Deno
// under load"): does a bare Deno.Conn server, with mailgate's I/O pattern (a read always
// in flight, writes issued without waiting for it), stall at thousands of
// concurrent connections without any mailgate code involved?
//
//   deno run -A --unstable-net tools/deno_stall_probe.ts [--conns=7000] [--seconds=90]
//     [--pattern=overlap|serial] [--backlog=511] [--listeners=1] [--server=deno|node]
//
// --pattern=serial: read, write the replies and wait for them, only then
// read again (no read in flight during a write), for comparison.
//
// This process is the server (Deno.listen, one pending read per
// connection, replies written while the next read is pending). The client
// loops run in a Node process (node:net), so the client is not Deno.
// Each loop: connect, three request/reply rounds ("ping N" -> "+OK N"),
// close, again until the time is up. A round without a reply within 30 s
// counts as a stall. Prints one JSON line; loopback only, bounded in time.
//
// --listeners=N opens N sockets on the port with SO_REUSEPORT, each with
// its own accept loop (a Deno.Listener takes one accept() at a time).
// --server=node serves the same protocol through node:net in the same Deno
// (what mailgate's Deno adapter uses since these measurements).
//
// Results on the 2-core test machine, 7,900 connections, 60 s (2026-11-22):
// Deno.listen stalled 519 sessions at backlog 511 and 305-2,556 at backlog
// 4096 with no listen-queue overflow at all (stalls in every round, not
// only the first: accepted connections wait too); 2 or 4 reusePort
// listeners did not help (424-4,672). node:net in Deno: 0 stalls in all
// four runs, and 38-50 % more sessions.

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import process from "node:process";

const arg = (name: string, def: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const CONNS = Number(arg("conns", "7000"));
const SECONDS = Number(arg("seconds", "90"));
const PATTERN = arg("pattern", "overlap");
/** Deno's default listen backlog is 511 (as nginx's). */
const BACKLOG = Number(arg("backlog", "511"));
const LISTENERS = Number(arg("listeners", "1"));
const SERVER = arg("server", "deno");
const REPLY_PREFIX = new TextEncoder().encode("+OK ");

const opts = { hostname: "127.0.0.1", tcpBacklog: BACKLOG, reusePort: LISTENERS > 1 };
const first = Deno.listen({ ...opts, port: 0 });
const port = (first.addr as Deno.NetAddr).port;
const listeners = [first];
for (let i = 1; i < LISTENERS; i++) listeners.push(Deno.listen({ ...opts, port }));
let open = 0;

/** mailgate's pattern: the next read is issued at once; the reply is written while it is pending. */
function serve(conn: Deno.Conn): void {
  open++;
  const buf = new Uint8Array(1024);
  let pending = "";
  const onRead = (n: number | null): void => {
    if (n === null) return done();
    pending += new TextDecoder().decode(buf.subarray(0, n));
    const replies: Uint8Array[] = [];
    for (let i = pending.indexOf("\n"); i >= 0; i = pending.indexOf("\n")) {
      const line = pending.slice(0, i).trim();
      pending = pending.slice(i + 1);
      const body = new TextEncoder().encode(line.replace(/^ping /, "") + "\r\n");
      const out = new Uint8Array(REPLY_PREFIX.length + body.length);
      out.set(REPLY_PREFIX);
      out.set(body, REPLY_PREFIX.length);
      replies.push(out);
    }
    if (PATTERN === "serial") {
      Promise.all(replies.map((r) => conn.write(r))).then(() => conn.read(buf).then(onRead, done), done);
      return;
    }
    conn.read(buf).then(onRead, done); // read in flight ...
    for (const r of replies) conn.write(r).catch(done); // ... while writing
  };
  let closed = false;
  const done = (): void => {
    if (closed) return;
    closed = true;
    open--;
    try {
      conn.close();
    } catch { /* closed */ }
  };
  conn.read(buf).then(onRead, done);
}

/** The same protocol over node:net (one data listener, replies written at once). */
function serveNode(s: import("node:net").Socket): void {
  open++;
  let pending = "";
  s.setNoDelay(true);
  s.on("data", (d) => {
    pending += d;
    for (let i = pending.indexOf("\n"); i >= 0; i = pending.indexOf("\n")) {
      const line = pending.slice(0, i).trim();
      pending = pending.slice(i + 1);
      s.write("+OK " + line.replace(/^ping /, "") + "\r\n");
    }
  });
  s.on("close", () => open--);
  s.on("error", () => {});
}

let nodeServer: import("node:net").Server | null = null;
if (SERVER === "node") {
  for (const l of listeners) l.close();
  nodeServer = createServer(serveNode);
  await new Promise<void>((r) => nodeServer!.listen({ port, host: "127.0.0.1", backlog: BACKLOG }, r));
} else {
  for (const l of listeners) {
    (async () => {
      for await (const c of l) serve(c);
    })();
  }
}

const CLIENT = String.raw`
const net = require("node:net");
const [port, conns, seconds] = process.argv.slice(1).map(Number);
const end = Date.now() + seconds * 1000;
let sessions = 0, stalls = 0, errors = 0, live = 0;
const stallRound = [0, 0, 0, 0]; // by round: 1 = the first reply after connect
function session() {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let round = 0, buf = "", timer = null, settled = false;
    const finish = (kind) => { if (settled) return; settled = true; clearTimeout(timer); s.destroy(); if (kind === "ok") sessions++; else if (kind === "stall") { stalls++; stallRound[round]++; } else errors++; resolve(); };
    const ask = () => { round++; clearTimeout(timer); timer = setTimeout(() => finish("stall"), 30000); s.write("ping " + round + "\n"); };
    s.on("connect", ask);
    s.on("data", (d) => { buf += d; if (buf.includes("\r\n")) { const want = "+OK " + round + "\r\n"; if (buf !== want) return finish("error"); buf = ""; if (round === 3) finish("ok"); else ask(); } });
    s.on("error", () => finish("error"));
    s.on("close", () => finish("error"));
  });
}
async function loop() { while (Date.now() < end) await session(); }
Promise.all(Array.from({ length: conns }, loop)).then(() => { console.log(JSON.stringify({ sessions, stalls, stallsByRound: stallRound.slice(1), errors })); process.exit(0); });
`;

const child = spawn("node", ["-e", CLIENT, String(port), String(CONNS), String(SECONDS)], {
  stdio: ["ignore", "pipe", "inherit"],
});
let out = "";
child.stdout.on("data", (d) => (out += d));
const code: number = await new Promise((r) => child.on("exit", (c) => r(c ?? 1)));
if (nodeServer !== null) nodeServer.close();
else for (const l of listeners) l.close();
const result = out.trim() ? JSON.parse(out.trim()) : { error: `client exited ${code}` };
console.log(JSON.stringify({ runtime: `deno ${Deno.version.deno}`, server: SERVER, pattern: PATTERN, backlog: BACKLOG, listeners: LISTENERS, conns: CONNS, seconds: SECONDS, stillOpen: open, ...result }));
Deno.exit(0);
