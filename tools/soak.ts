// deno task soak: many concurrent sessions through the real mailgate
// process, each moving its own unique payload, checked byte for byte.
//
//   deno run -A --unstable-net tools/soak.ts [--sessions=1000] [--seconds=60]
//       [--targets=deno,bun,binary] [--protocols=imap,pop3,smtp]
//       [--max-payload=65536 (16384 above 2000 sessions)] [--transfers=3] [--settle=10]
//
// Three processes per target, each with its own fd budget: this one (the
// load: `sessions` concurrent client loops), a backend (this file again with
// --role=backend; IMAP, POP3 and SMTP listeners) and mailgate (under Deno,
// under Bun, or the Bun-compiled executable), which routes every user to
// the backend through its built-in auth table. mailgate needs two fds per
// session, and under churn holds a few more sessions than there are client
// loops, so the concurrency is capped at (fd limit - reserve) / 2 / 1.25
// (7,920 with the 20,000-fd limit). Each step of a session may take up to
// two minutes: on two shared cores a full run is slow, and a client that
// gives up early leaves mailgate holding its session until `timeout`.
//
// Each client loop runs sessions until the time is up: connect, log in as
// a user naming the session, then `--transfers` transfers, each with a
// fresh seed and a random size up to --max-payload, then log out:
//   IMAP  download  `d BLOB <len> <seed>`  -> * BLOB {len} <payload> CRLF d OK
//         upload    `u UPLOAD <seed> {len}` <payload>  -> u OK good
//   POP3  download  `BLOB <len> <seed>`    -> +OK <len> <payload> CRLF . CRLF
//         upload    `UPLOAD <len> <seed>` <payload>  -> +OK good
//   SMTP  MAIL FROM:<s<seed>.<len>@soak> RCPT DATA, the payload as hex lines -> 250 good
// The payload of a seed is 4 KiB blocks of xorshift bytes stamped with the
// block number, so bytes that are lost, truncated, reordered or belong to
// another session (crossed) never match. Both ends check as bytes arrive.
//
// Afterwards: mailgate's fds must be back at the baseline; its RSS peak
// must stay under 512 KiB per session (+128 MiB) and, on runs of 30 s or
// more, plateau under the steady load (after a 20 % warm-up, the second
// half's peak within 15 % + 16 MiB of the first half's, unless at least
// half of the growth is given back after the load: a leak keeps growing and
// keeps its memory); it is reported at start and --settle seconds after the
// load (what the runtime gives back). One
// summary table; the exit code is non-zero on any lost, truncated or
// crossed byte, any failed session, an error line in mailgate's log, an fd
// leak, or RSS still growing. Everything listens on loopback, every loop is
// bounded in time, and every process started is stopped by pid.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createServer, connect, type Server, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { join, resolve } from "node:path";
import process from "node:process";
import { type Running, startMailgate, type Target } from "../tests/helpers/mailgate.ts";
import { fdCount, rssBytes, settleFds } from "../tests/helpers/proc_stats.ts";
import { freePorts } from "../tests/helpers/ports.ts";

export type Proto = "imap" | "pop3" | "smtp";

export interface SoakOptions {
  sessions: number;
  seconds: number;
  targets: Target[];
  protocols: Proto[];
  maxPayload: number;
  transfers: number;
  /** After the load: how long to watch mailgate's RSS settle (seconds). */
  settleSeconds: number;
  /** Run the backend inside this process (tests; small session counts). */
  inProcessBackend?: boolean;
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
}

export interface ProtoStats {
  sessions: number;
  failedSessions: number;
  transfers: number;
  bytesDown: number;
  bytesUp: number;
  /** Transfers that never completed (timeout). */
  lost: number;
  /** Connections closed before a transfer was complete. */
  truncated: number;
  /** Bytes that did not match the session's own payload. */
  crossed: number;
  /** Unexpected replies (refusals, internal errors). */
  errors: number;
}

export interface TargetResult {
  target: Target;
  concurrency: number;
  seconds: number;
  byProto: Record<Proto, ProtoStats>;
  rssStart: number;
  rssPeak: number;
  /** Peak RSS in the first and in the second half of the load (a leak grows; a plateau does not). */
  rssPeakFirstHalf: number;
  rssPeakSecondHalf: number;
  rssEnd: number;
  fdsStart: number;
  /** Most fds mailgate had open during the load. */
  fdsPeak: number;
  fdsEnd: number;
  /** First few failure descriptions. */
  failures: string[];
  /** mailgate error-log lines at [error] or worse, and the first few of them. */
  errorLines: number;
  errorSamples: string[];
}

const ROOT = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const BLOCK = 4096;
/** Longest protocol line either side accepts. */
const MAX_LINE = 8192;
/** One step of a session (a reply, a payload) must complete within this. */
const STEP_TIMEOUT_MS = 120_000;
/** The backend waits this long for mailgate's next line (the client may be slow under load). */
const BACKEND_IDLE_MS = 300_000;
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
/** Second-half peak RSS may exceed the first half's by this factor plus slack (noise, heap growth steps). */
const RSS_PLATEAU_FACTOR = 1.15;
const RSS_PLATEAU_SLACK = 16 * 2 ** 20;
/** The plateau is judged on runs of at least this length, after this fraction of the run. */
const RSS_PLATEAU_MIN_SECONDS = 30;
const RSS_WARMUP_FRACTION = 0.2;
/** Bound on RSS per concurrent session at the peak (Deno measured ~190 KiB, Bun ~80 KiB). */
const RSS_PER_SESSION_MAX = 512 * 1024;
/** SMTP DATA carries the payload as hex lines of this many bytes. */
const HEX_LINE_BYTES = 38;

// ---- payload ---------------------------------------------------------------

/** The payload of one seed: 4 KiB blocks of xorshift bytes, each stamped with its number. */
export class Payload {
  readonly #base = Buffer.alloc(BLOCK);
  constructor(readonly seed: number, readonly length: number) {
    let x = (seed ^ 0x9e3779b9) >>> 0 || 1;
    for (let i = 0; i < BLOCK; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.#base[i] = x & 0xff;
    }
  }

  /** Block k (the last one may be short); a fresh buffer. */
  block(k: number): Buffer {
    const n = Math.min(BLOCK, this.length - k * BLOCK);
    const b = Buffer.from(this.#base.subarray(0, n));
    if (n >= 4) b.writeUInt32BE(k ^ this.seed, 0);
    return b;
  }

  get blocks(): number {
    return Math.ceil(this.length / BLOCK);
  }
}

/** Compares arriving bytes with a payload. */
export class PayloadCheck {
  received = 0;
  ok = true;
  #k = -1;
  #cur: Buffer = Buffer.alloc(0);
  constructor(readonly payload: Payload) {}

  push(data: Uint8Array): void {
    let off = 0;
    while (off < data.length && this.ok) {
      if (this.received >= this.payload.length) {
        this.ok = false;
        return;
      }
      const k = Math.floor(this.received / BLOCK);
      if (k !== this.#k) {
        this.#k = k;
        this.#cur = this.payload.block(k);
      }
      const at = this.received % BLOCK;
      const n = Math.min(this.#cur.length - at, data.length - off);
      if (Buffer.compare(this.#cur.subarray(at, at + n), data.subarray(off, off + n)) !== 0) this.ok = false;
      off += n;
      this.received += n;
    }
  }

  get complete(): boolean {
    return this.ok && this.received === this.payload.length;
  }
}

// ---- a small reader over a socket ---------------------------------------------

class Closed extends Error {}
class Timeout extends Error {}

/** Lines and counted bytes from a socket, with a deadline per call. */
export class Reader {
  #chunks: Buffer[] = [];
  #len = 0;
  #wake: (() => void) | null = null;
  #closed = false;

  constructor(readonly sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.#chunks.push(d);
      this.#len += d.length;
      this.#notify();
    });
    sock.on("close", () => {
      this.#closed = true;
      this.#notify();
    });
    sock.on("error", () => {});
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async #more(deadline: number, what: string): Promise<void> {
    if (this.#closed) throw new Closed(`closed by peer, waiting for ${what}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Timeout(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, left);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** The next line without its CRLF / LF (latin1). */
  async line(what = "a line", ms = STEP_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      let acc = 0;
      for (const c of this.#chunks) {
        const i = c.indexOf(10);
        if (i >= 0) {
          const b = this.#take(acc + i + 1);
          const end = b.length >= 2 && b[b.length - 2] === 13 ? b.length - 2 : b.length - 1;
          return b.toString("latin1", 0, end);
        }
        acc += c.length;
        if (acc > MAX_LINE) throw new Error("line too long");
      }
      await this.#more(deadline, what);
    }
  }

  /** Exactly n bytes, handed to sink piece by piece as they arrive. */
  async bytes(n: number, sink: (b: Buffer) => void, ms = STEP_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + ms;
    while (n > 0) {
      if (this.#chunks.length === 0) {
        await this.#more(deadline, `${n} more payload bytes`);
        continue;
      }
      const c = this.#chunks[0];
      const k = Math.min(n, c.length);
      sink(c.subarray(0, k));
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
      this.#len -= k;
      n -= k;
    }
  }

  #take(n: number): Buffer {
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0];
      if (c.length <= left) {
        parts.push(c);
        this.#chunks.shift();
        left -= c.length;
      } else {
        parts.push(c.subarray(0, left));
        this.#chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.#len -= n;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }
}

/** Writes with backpressure. */
function send(sock: Socket, data: string | Uint8Array): Promise<void> {
  if (sock.write(typeof data === "string" ? Buffer.from(data, "latin1") : data)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      sock.off("drain", done);
      sock.off("close", done);
      resolve();
    };
    sock.on("drain", done);
    sock.on("close", done);
  });
}

async function sendPayload(sock: Socket, p: Payload): Promise<void> {
  for (let k = 0; k < p.blocks && !sock.destroyed; k++) await send(sock, p.block(k));
}

/** The payload as SMTP DATA: hex lines (never a leading "."), then the end line. */
async function sendHexPayload(sock: Socket, p: Payload): Promise<void> {
  for (let k = 0; k < p.blocks && !sock.destroyed; k++) {
    const b = p.block(k);
    let text = "";
    for (let i = 0; i < b.length; i += HEX_LINE_BYTES) text += b.toString("hex", i, Math.min(b.length, i + HEX_LINE_BYTES)) + "\r\n";
    await send(sock, text);
  }
  await send(sock, ".\r\n");
}

// ---- the backend -------------------------------------------------------------------

/** IMAP, POP3 and SMTP listeners that serve and check payloads by seed. */
export class SoakBackend {
  readonly servers: Record<Proto, Server>;
  readonly ports = { imap: 0, pop3: 0, smtp: 0 };
  readonly sockets = new Set<Socket>();
  /** Uploads that did not match (also reported to the client). */
  bad = 0;

  constructor() {
    this.servers = {
      imap: createServer((s) => this.#run(s, (r) => this.#imap(s, r))),
      pop3: createServer((s) => this.#run(s, (r) => this.#pop3(s, r))),
      smtp: createServer((s) => this.#run(s, (r) => this.#smtp(s, r))),
    };
  }

  async start(): Promise<this> {
    for (const p of ["imap", "pop3", "smtp"] as Proto[]) {
      await new Promise<void>((r) => this.servers[p].listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => r()));
      this.ports[p] = (this.servers[p].address() as { port: number }).port;
    }
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(Object.values(this.servers).map((srv) => new Promise<void>((r) => srv.close(() => r()))));
  }

  #run(sock: Socket, f: (r: Reader) => Promise<void>): void {
    this.sockets.add(sock);
    sock.setNoDelay(true);
    const r = new Reader(sock);
    sock.on("close", () => this.sockets.delete(sock));
    f(r).catch(() => {}).finally(() => sock.destroy());
  }

  async #upload(r: Reader, p: Payload): Promise<boolean> {
    const check = new PayloadCheck(p);
    await r.bytes(p.length, (b) => check.push(b));
    if (!check.complete) this.bad++;
    return check.complete;
  }

  async #imap(s: Socket, r: Reader): Promise<void> {
    await send(s, "* OK soak IMAP ready\r\n");
    // mailgate's login: <tag> LOGIN {u} / <user> {p} / <pass>
    const m = /^(\S+) LOGIN \{(\d+)\}$/.exec(await r.line("command", BACKEND_IDLE_MS));
    if (!m) return;
    await send(s, "+ go\r\n");
    await r.bytes(Number(m[2]), () => {});
    const pm = /^ \{(\d+)\}$/.exec(await r.line("command", BACKEND_IDLE_MS));
    if (!pm) return;
    await send(s, "+ go\r\n");
    await r.bytes(Number(pm[1]), () => {});
    await r.line("command", BACKEND_IDLE_MS);
    await send(s, `${m[1]} OK soak login\r\n`);
    for (;;) {
      const line = await r.line("command", BACKEND_IDLE_MS);
      let c: RegExpExecArray | null;
      if ((c = /^(\S+) BLOB (\d+) (\d+)$/.exec(line))) {
        const p = new Payload(Number(c[3]), Number(c[2]));
        await send(s, `* BLOB {${p.length}}\r\n`);
        await sendPayload(s, p);
        await send(s, `\r\n${c[1]} OK blob\r\n`);
      } else if ((c = /^(\S+) UPLOAD (\d+) \{(\d+)\}$/.exec(line))) {
        await send(s, "+ go\r\n");
        const good = await this.#upload(r, new Payload(Number(c[2]), Number(c[3])));
        await r.line("command", BACKEND_IDLE_MS); // the CRLF that ends the command
        await send(s, `${c[1]} OK ${good ? "good" : "bad"}\r\n`);
      } else if ((c = /^(\S+) LOGOUT$/.exec(line))) {
        await send(s, `* BYE\r\n${c[1]} OK bye\r\n`);
        return void s.end();
      } else await send(s, "* BAD soak\r\n");
    }
  }

  async #pop3(s: Socket, r: Reader): Promise<void> {
    await send(s, "+OK soak POP3 ready\r\n");
    if (!/^USER /.test(await r.line("command", BACKEND_IDLE_MS))) return;
    await send(s, "+OK\r\n");
    if (!/^PASS /.test(await r.line("command", BACKEND_IDLE_MS))) return;
    await send(s, "+OK soak login\r\n");
    for (;;) {
      const line = await r.line("command", BACKEND_IDLE_MS);
      let c: RegExpExecArray | null;
      if ((c = /^BLOB (\d+) (\d+)$/.exec(line))) {
        const p = new Payload(Number(c[2]), Number(c[1]));
        await send(s, `+OK ${p.length}\r\n`);
        await sendPayload(s, p);
        await send(s, "\r\n.\r\n");
      } else if ((c = /^UPLOAD (\d+) (\d+)$/.exec(line))) {
        const good = await this.#upload(r, new Payload(Number(c[2]), Number(c[1])));
        await send(s, `+OK ${good ? "good" : "bad"}\r\n`);
      } else if (line === "QUIT") {
        await send(s, "+OK bye\r\n");
        return void s.end();
      } else await send(s, "-ERR soak\r\n");
    }
  }

  async #smtp(s: Socket, r: Reader): Promise<void> {
    await send(s, "220 soak ESMTP\r\n");
    let payload: Payload | null = null;
    for (;;) {
      const line = await r.line("command", BACKEND_IDLE_MS);
      const cmd = line.slice(0, 4).toUpperCase();
      let c: RegExpExecArray | null;
      if (cmd === "EHLO") await send(s, "250-soak\r\n250 8BITMIME\r\n");
      else if ((c = /^MAIL FROM:<s(\d+)\.(\d+)@soak>$/.exec(line))) {
        payload = new Payload(Number(c[1]), Number(c[2]));
        await send(s, "250 2.1.0 ok\r\n");
      } else if (cmd === "RCPT") await send(s, "250 2.1.5 ok\r\n");
      else if (cmd === "DATA" && payload) {
        await send(s, "354 go\r\n");
        const check = new PayloadCheck(payload);
        for (let i = 0; i < payload.length + 2; i++) {
          const l = await r.line("DATA line", BACKEND_IDLE_MS);
          if (l === ".") break;
          check.push(Buffer.from(l, "hex"));
        }
        if (!check.complete) this.bad++;
        await send(s, check.complete ? `250 2.0.0 good ${check.received}\r\n` : `554 5.0.0 bad ${check.received}\r\n`);
        payload = null;
      } else if (cmd === "QUIT") {
        await send(s, "221 2.0.0 bye\r\n");
        return void s.end();
      } else await send(s, "502 5.5.2 soak\r\n");
    }
  }
}

// ---- the clients ---------------------------------------------------------------------

function emptyStats(): ProtoStats {
  return { sessions: 0, failedSessions: 0, transfers: 0, bytesDown: 0, bytesUp: 0, lost: 0, truncated: 0, crossed: 0, errors: 0 };
}

class Mismatch extends Error {}
class BadReply extends Error {}

function expect(line: string, re: RegExp, what: string): RegExpExecArray {
  const m = re.exec(line);
  if (!m) throw new BadReply(`${what}: ${JSON.stringify(line.slice(0, 120))}`);
  return m;
}

/** A seed unique to this run, session and transfer. */
let nextSeed = (Date.now() & 0xffff) << 12;

function payloadFor(maxPayload: number): Payload {
  nextSeed = (nextSeed + 1) >>> 0;
  return new Payload(nextSeed, 1 + Math.floor(Math.random() * maxPayload));
}

async function download(r: Reader, p: Payload, st: ProtoStats): Promise<void> {
  const check = new PayloadCheck(p);
  await r.bytes(p.length, (b) => check.push(b));
  if (!check.complete) throw new Mismatch(`payload ${p.seed} differs at byte ${check.received}`);
  st.bytesDown += p.length;
}

async function imapSession(sock: Socket, r: Reader, o: SoakOptions, st: ProtoStats, id: number): Promise<void> {
  expect(await r.line("greeting"), /^\* OK IMAP4 ready$/, "greeting");
  await send(sock, `a LOGIN soak-${id} pw\r\n`);
  expect(await r.line("login"), /^a OK soak login$/, "login");
  for (let t = 0; t < o.transfers; t++) {
    const p = payloadFor(o.maxPayload);
    if (t % 2 === 0) {
      await send(sock, `d${t} BLOB ${p.length} ${p.seed}\r\n`);
      expect(await r.line("BLOB"), new RegExp(`^\\* BLOB \\{${p.length}\\}$`), "BLOB");
      await download(r, p, st);
      expect(await r.line("end of literal"), /^$/, "end of literal");
      expect(await r.line("BLOB done"), new RegExp(`^d${t} OK blob$`), "BLOB done");
    } else {
      await send(sock, `u${t} UPLOAD ${p.seed} {${p.length}}\r\n`);
      expect(await r.line("continuation"), /^\+ go$/, "continuation");
      await sendPayload(sock, p);
      await send(sock, "\r\n");
      const m = expect(await r.line("UPLOAD"), new RegExp(`^u${t} OK (good|bad)$`), "UPLOAD");
      if (m[1] !== "good") throw new Mismatch(`upload ${p.seed} arrived changed`);
      st.bytesUp += p.length;
    }
    st.transfers++;
  }
  await send(sock, "z LOGOUT\r\n");
  expect(await r.line("BYE"), /^\* BYE$/, "BYE");
  expect(await r.line("LOGOUT"), /^z OK bye$/, "LOGOUT");
}

async function pop3Session(sock: Socket, r: Reader, o: SoakOptions, st: ProtoStats, id: number): Promise<void> {
  expect(await r.line("greeting"), /^\+OK POP3 ready$/, "greeting");
  await send(sock, `USER soak-${id}\r\nPASS pw\r\n`);
  expect(await r.line("USER"), /^\+OK$/, "USER");
  expect(await r.line("PASS"), /^\+OK soak login$/, "PASS");
  for (let t = 0; t < o.transfers; t++) {
    const p = payloadFor(o.maxPayload);
    if (t % 2 === 0) {
      await send(sock, `BLOB ${p.length} ${p.seed}\r\n`);
      expect(await r.line("BLOB"), new RegExp(`^\\+OK ${p.length}$`), "BLOB");
      await download(r, p, st);
      expect(await r.line("end of data"), /^$/, "end of data");
      expect(await r.line("end of list"), /^\.$/, "end of list");
    } else {
      await send(sock, `UPLOAD ${p.length} ${p.seed}\r\n`);
      await sendPayload(sock, p);
      const m = expect(await r.line("UPLOAD"), /^\+OK (good|bad)$/, "UPLOAD");
      if (m[1] !== "good") throw new Mismatch(`upload ${p.seed} arrived changed`);
      st.bytesUp += p.length;
    }
    st.transfers++;
  }
  await send(sock, "QUIT\r\n");
  expect(await r.line("QUIT"), /^\+OK bye$/, "QUIT");
}

async function smtpSession(sock: Socket, r: Reader, o: SoakOptions, st: ProtoStats, id: number): Promise<void> {
  expect(await r.line("greeting"), /^220 soak\.test ESMTP ready$/, "greeting");
  await send(sock, "EHLO soak.client\r\n");
  for (let i = 0; i < 20; i++) if (/^250 /.test(await r.line())) break;
  await send(sock, `AUTH PLAIN ${Buffer.from(`\0soak-${id}\0pw`, "latin1").toString("base64")}\r\n`);
  expect(await r.line("AUTH"), /^235 2\.0\.0 OK$/, "AUTH");
  for (let t = 0; t < o.transfers; t++) {
    const p = payloadFor(o.maxPayload);
    await send(sock, `MAIL FROM:<s${p.seed}.${p.length}@soak>\r\nRCPT TO:<r@soak>\r\nDATA\r\n`);
    expect(await r.line("MAIL"), /^250 /, "MAIL");
    expect(await r.line("RCPT"), /^250 /, "RCPT");
    expect(await r.line("DATA"), /^354 /, "DATA");
    await sendHexPayload(sock, p);
    const m = expect(await r.line("end of DATA"), /^(250 2\.0\.0 good|554 5\.0\.0 bad) (\d+)$/, "end of DATA");
    if (!m[1].startsWith("250")) throw new Mismatch(`message ${p.seed} arrived changed`);
    st.bytesUp += p.length;
    st.transfers++;
  }
  await send(sock, "QUIT\r\n");
  expect(await r.line("QUIT"), /^221 /, "QUIT");
}

const SESSIONS = { imap: imapSession, pop3: pop3Session, smtp: smtpSession };

/** Admits at most `n` connection attempts at a time. */
class Window {
  #free: number;
  #queue: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async take(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((r) => this.#queue.push(r));
  }
  give(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#free++;
  }
}

function openSocket(port: number, win: Window): Promise<Socket> {
  return win.take().then(() =>
    new Promise<Socket>((resolve, reject) => {
      const s = connect({ port, host: "127.0.0.1" });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Timeout("connect timed out"));
      }, STEP_TIMEOUT_MS);
      s.once("connect", () => {
        clearTimeout(t);
        s.setNoDelay(true);
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(t);
        reject(e);
      });
    }).finally(() => win.give())
  );
}

// ---- one target ---------------------------------------------------------------------

function fdLimit(): number {
  const r = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" });
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

/** The backend in its own process (this file with --role=backend); resolves with its ports. */
async function spawnBackend(): Promise<{ ports: Record<Proto, number>; proc: ChildProcess; stop(): Promise<void> }> {
  const self = join(ROOT, "tools", "soak.ts");
  const isBun = typeof process.versions.bun === "string";
  const args = isBun ? [self, "--role=backend"] : ["run", "-A", "--unstable-net", self, "--role=backend"];
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  const ports = await new Promise<Record<Proto, number>>((resolve, reject) => {
    let out = "";
    const t = setTimeout(() => reject(new Error("backend did not start")), 20_000);
    proc.stdout!.on("data", (d) => {
      out += d;
      const i = out.indexOf("\n");
      if (i >= 0) {
        clearTimeout(t);
        resolve(JSON.parse(out.slice(0, i)));
      }
    });
    proc.once("exit", (code) => reject(new Error(`backend exited (${code})`)));
  });
  return {
    ports,
    proc,
    async stop() {
      if (proc.exitCode !== null) return;
      const done = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await done;
      clearTimeout(t);
    },
  };
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

const mib = (n: number) => (n / 2 ** 20).toFixed(1);

/** Problems in a result; empty when clean. */
export function verdict(r: TargetResult, protocols: Proto[]): string[] {
  const out: string[] = [];
  for (const p of protocols) {
    const s = r.byProto[p];
    if (s.sessions === 0) out.push(`${p}: no session completed`);
    for (const k of ["failedSessions", "lost", "truncated", "crossed", "errors"] as const) {
      if (s[k] > 0) out.push(`${p}: ${s[k]} ${k}`);
    }
  }
  if (r.fdsEnd > r.fdsStart) out.push(`fds ${r.fdsStart} -> ${r.fdsEnd}`);
  // Under a steady load memory plateaus; a leak keeps growing. Short runs
  // end before the runtime's heap has found its size: bounded, not judged.
  if (r.rssPeak > r.rssStart + r.concurrency * RSS_PER_SESSION_MAX + RSS_PLATEAU_SLACK * 8) {
    out.push(`RSS peak ${mib(r.rssPeak)} MiB for ${r.concurrency} sessions`);
  }
  // Growth that the runtime gives back after the load was a slow ramp-up
  // (thousands of sessions still connecting), not a leak.
  const kept = r.rssEnd - r.rssStart > (r.rssPeak - r.rssStart) / 2;
  if (
    r.seconds >= RSS_PLATEAU_MIN_SECONDS && kept &&
    r.rssPeakSecondHalf > r.rssPeakFirstHalf * RSS_PLATEAU_FACTOR + RSS_PLATEAU_SLACK
  ) {
    out.push(`RSS still growing: peak ${mib(r.rssPeakFirstHalf)} MiB in the first half, ${mib(r.rssPeakSecondHalf)} MiB in the second`);
  }
  if (r.rssEnd > r.rssPeak + RSS_PLATEAU_SLACK) out.push(`RSS grew after the load: ${mib(r.rssEnd)} MiB`);
  if (r.errorLines > 0) out.push(`${r.errorLines} error lines in mailgate's log`);
  return out;
}

export function table(results: TargetResult[], protocols: Proto[]): string {
  const rows = [
    "| target | proto | sessions | failed | transfers | MiB down | MiB up | lost | truncated | crossed | errors |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ];
  for (const r of results) {
    for (const p of protocols) {
      const s = r.byProto[p];
      rows.push(`| ${r.target} | ${p} | ${s.sessions} | ${s.failedSessions} | ${s.transfers} | ${mib(s.bytesDown)} | ${mib(s.bytesUp)} | ${s.lost} | ${s.truncated} | ${s.crossed} | ${s.errors} |`);
    }
  }
  rows.push(
    "",
    "| target | concurrency | seconds | RSS start | peak 1st half | peak 2nd half | RSS end (MiB) | fds start | fds peak | fds end | error lines |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  );
  for (const r of results) {
    rows.push(`| ${r.target} | ${r.concurrency} | ${r.seconds} | ${mib(r.rssStart)} | ${mib(r.rssPeakFirstHalf)} | ${mib(r.rssPeakSecondHalf)} | ${mib(r.rssEnd)} | ${r.fdsStart} | ${r.fdsPeak} | ${r.fdsEnd} | ${r.errorLines} |`);
  }
  return rows.join("\n");
}

// ---- command line --------------------------------------------------------------------

function arg(name: string, dflt: string): string {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}

async function main(): Promise<number> {
  if (arg("role", "") === "backend") {
    const b = await new SoakBackend().start();
    console.log(JSON.stringify(b.ports));
    await new Promise<void>((resolve) => {
      process.on("SIGTERM", () => resolve());
      process.on("SIGINT", () => resolve());
    });
    await b.stop();
    return 0;
  }
  const o: SoakOptions = {
    sessions: Number(arg("sessions", "1000")),
    seconds: Number(arg("seconds", "60")),
    targets: arg("targets", "deno,bun,binary").split(",") as Target[],
    protocols: arg("protocols", "imap,pop3,smtp").split(",") as Proto[],
    // Big runs share two cores among three processes: smaller payloads keep every step well inside STEP_TIMEOUT_MS.
    maxPayload: Number(arg("max-payload", Number(arg("sessions", "1000")) > 2000 ? "16384" : "65536")),
    transfers: Number(arg("transfers", "3")),
    settleSeconds: Number(arg("settle", "10")),
  };
  console.log(`soak: ${o.sessions} sessions, ${o.seconds} s per target, payloads up to ${o.maxPayload} bytes, ${o.transfers} transfers per session`);
  const results: TargetResult[] = [];
  let bad = false;
  for (const t of o.targets) {
    console.log(`${t}: running`);
    const r = await soakTarget(t, o);
    results.push(r);
    const v = verdict(r, o.protocols);
    if (v.length > 0) {
      bad = true;
      console.log(`${t}: FAIL: ${v.join("; ")}`);
      for (const f of r.failures) console.log(`  ${f}`);
      for (const l of r.errorSamples) console.log(`  mailgate: ${l}`);
    } else console.log(`${t}: ok`);
  }
  console.log("\n" + table(results, o.protocols));
  return bad ? 1 : 0;
}

if (import.meta.main) process.exit(await main());
