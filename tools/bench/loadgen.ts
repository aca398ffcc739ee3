// The benchmark's load generator, a separate process (run by Bun:
// bun tools/bench/loadgen.ts '<json options>'), so its CPU is not charged to
// the proxy. One job per run; prints one JSON result line (plus, for "hold",
// a line when the sessions are up) and exits. Every job is bounded in count
// and time.
//
//   login: N concurrent loops of connect [TLS] -> greeting -> login -> logout
//          -> server closes, for durationMs or maxSessions sessions
//   down:  IMAP login, then `a DOWN <bytes>` through the proxy (backend -> client)
//   up:    SMTP AUTH, MAIL, RCPT, DATA, <bytes>, "." (client -> backend)
//   hold:  n IMAP sessions logged in and left idle until "release" on stdin
//   latency: one session, login, then `commands` commands each sent once the
//          previous reply is complete (IMAP `a DOWN 2000`, POP3 RETR, SMTP
//          RCPT TO), as fetchmail does; ms per command. `direct` skips SMTP
//          AUTH (the lean backend is not a proxy and does not answer it)

import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { Buffer } from "node:buffer";
import process from "node:process";
import { announce, helperOptions, listenParent } from "./child_io.ts";
import { LOGIN_STEPS, LOGOUT_STEP, type Proto, runDialog, type Step } from "./dialog.ts";
import { latencyCommand } from "./latency.ts";
import { selfCpuSeconds } from "./proc_stats.ts";
import {
  BLOCK_BYTES,
  blocksFor,
  DOWN_TRAILER,
  downHeader,
  imapDown,
  SMTP_DATA,
  SMTP_DATA_END,
  SMTP_MAIL,
  SMTP_RCPT,
  textBlock,
} from "./wire.ts";

export interface LoadJob {
  mode: "login" | "down" | "up" | "hold" | "latency";
  port: number;
  proto?: Proto;
  tls?: boolean;
  concurrency?: number;
  durationMs?: number;
  maxSessions?: number;
  bytes?: number;
  n?: number;
  commands?: number;
  direct?: boolean;
}

/** One session (connect to close) that takes longer than this is an error. */
const SESSION_TIMEOUT_MS = 15_000;
/** A relay job that takes longer than this fails. */
const TRANSFER_TIMEOUT_MS = 300_000;
const HOST = "127.0.0.1";

function open(port: number, tls: boolean): Socket {
  const s = tls
    ? tlsConnect({ host: HOST, port, rejectUnauthorized: false })
    : tcpConnect({ host: HOST, port });
  s.setNoDelay(true);
  return s;
}

/** Runs steps on a new connection; resolves with null or the error text. */
function session(port: number, tls: boolean, steps: readonly Step[], keep = false) {
  return new Promise<{ err: string | null; sock: Socket }>((resolve) => {
    const sock = open(port, tls);
    const t = setTimeout(() => {
      sock.destroy();
      resolve({ err: "session timeout", sock });
    }, SESSION_TIMEOUT_MS);
    runDialog(sock, steps, (err) => {
      clearTimeout(t);
      if (err !== null || !keep) sock.destroy();
      resolve({ err, sock });
    });
  });
}

const percentile = (xs: Float64Array, p: number) => {
  if (xs.length === 0) return 0;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

async function login(job: LoadJob) {
  const proto = job.proto ?? "imap";
  const steps = [...LOGIN_STEPS[proto], LOGOUT_STEP[proto]];
  const max = job.maxSessions ?? 100_000;
  const lat = new Float64Array(max);
  let started = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | null = null;
  const t0 = performance.now();
  const c0 = selfCpuSeconds();
  const deadline = t0 + (job.durationMs ?? 2000);
  const loop = async () => {
    while (started < max && performance.now() < deadline) {
      started++;
      const s0 = performance.now();
      const { err } = await session(job.port, job.tls ?? false, steps);
      if (err === null) lat[done++] = performance.now() - s0;
      else {
        errors++;
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency ?? 32 }, loop));
  const ms = performance.now() - t0;
  const xs = lat.subarray(0, done);
  return {
    sessions: done,
    errors,
    firstError,
    ms,
    perSec: done / (ms / 1000),
    p50Ms: percentile(xs, 0.5),
    p99Ms: percentile(xs, 0.99),
    cpuS: selfCpuSeconds() - c0,
  };
}

/** Logs in, then hands the socket to `transfer`, which resolves with the timed milliseconds. */
async function relayJob(job: LoadJob, proto: Proto, transfer: (s: Socket) => Promise<number>) {
  const c0 = selfCpuSeconds();
  const { err, sock } = await session(job.port, false, LOGIN_STEPS[proto], true);
  if (err !== null) throw new Error(`login: ${err}`);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const ms = await Promise.race([
      transfer(sock),
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error("transfer timeout")), TRANSFER_TIMEOUT_MS);
      }),
    ]);
    return { bytes: job.bytes, ms, cpuS: selfCpuSeconds() - c0 };
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}

/** backend -> client: counts the exact reply length of `a DOWN n`. */
function down(job: LoadJob) {
  const n = blocksFor(job.bytes ?? BLOCK_BYTES) * BLOCK_BYTES;
  job.bytes = n;
  const want = downHeader(n).length + n + DOWN_TRAILER.length;
  return relayJob(job, "imap", (sock) =>
    new Promise<number>((resolve, reject) => {
      let got = 0;
      const t0 = performance.now();
      sock.on("data", (d: Buffer) => {
        got += d.length;
        if (got >= want) resolve(performance.now() - t0);
      });
      sock.once("close", () => reject(new Error(`closed after ${got} of ${want} bytes`)));
      sock.write(imapDown(n));
    }));
}

/** Sends one command and waits for a reply line starting with `code`. */
function command(sock: Socket, line: string, code: string): Promise<void> {
  return new Promise((resolve, reject) => {
    runDialog(
      sock,
      [{ send: line, expect: code }],
      (err) => err === null ? resolve() : reject(new Error(err)),
    );
  });
}

/** client -> backend: one SMTP message of `bytes`, timed from DATA's 354 to the 250. */
function up(job: LoadJob) {
  const blocks = blocksFor(job.bytes ?? BLOCK_BYTES);
  job.bytes = blocks * BLOCK_BYTES;
  const block = textBlock();
  return relayJob(job, "smtp", async (sock) => {
    await command(sock, SMTP_MAIL, "250");
    await command(sock, SMTP_RCPT, "250");
    await command(sock, SMTP_DATA, "354");
    const t0 = performance.now();
    const accepted = new Promise<void>((resolve, reject) =>
      runDialog(
        sock,
        [{ expect: "250 " }],
        (err) => err === null ? resolve() : reject(new Error(err)),
      )
    );
    for (let i = 0; i < blocks; i++) {
      if (!sock.write(block)) {
        await new Promise<void>((resolve, reject) => {
          sock.once("drain", resolve);
          sock.once("close", () => reject(new Error("closed while sending")));
        });
      }
    }
    sock.write(SMTP_DATA_END);
    await accepted;
    return performance.now() - t0;
  });
}

/** n idle IMAP sessions, opened `concurrency` at a time, kept until "release". */
async function hold(job: LoadJob) {
  const n = job.n ?? 1000;
  const conc = job.concurrency ?? 100;
  const socks: Socket[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const t0 = performance.now();
  let next = 0;
  const loop = async () => {
    while (next < n) {
      next++;
      const { err, sock } = await session(job.port, false, LOGIN_STEPS.imap, true);
      if (err === null) socks.push(sock);
      else {
        errors++;
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, loop));
  announce({ held: socks.length, errors, firstError, ms: performance.now() - t0 });
  await new Promise<void>((resolve) => {
    listenParent((line) => {
      if (line === "release") resolve();
    }, () => socks.forEach((s) => s.destroy()));
  });
  for (const s of socks) s.destroy();
  return { released: socks.length };
}

/** One session; each command is sent once the previous reply has fully arrived. */
async function latency(job: LoadJob) {
  const proto = job.proto ?? "imap";
  const steps = job.direct && proto === "smtp" ? LOGIN_STEPS.smtp.slice(0, 2) : LOGIN_STEPS[proto];
  const { err, sock } = await session(job.port, job.tls ?? false, steps, true);
  if (err !== null) throw new Error(`login: ${err}`);
  const { line, end } = latencyCommand(proto);
  const n = job.commands ?? 100;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    if (proto === "smtp") await command(sock, SMTP_MAIL, "250");
    const t0 = performance.now();
    await Promise.race([
      new Promise<void>((resolve, reject) => {
        let buf = "";
        let left = n;
        sock.on("data", (d: Buffer) => {
          buf += d.toString("latin1");
          // A reply is complete once it ends with its terminator.
          if (!buf.endsWith(end)) return;
          buf = "";
          if (--left === 0) resolve();
          else sock.write(line);
        });
        sock.once("close", () => reject(new Error(`closed with ${left} commands left`)));
        sock.write(line);
      }),
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error("latency timeout")), TRANSFER_TIMEOUT_MS);
      }),
    ]);
    return { commands: n, msPerCommand: (performance.now() - t0) / n };
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}

const job = helperOptions<LoadJob>();
const run = { login, down, up, hold, latency }[job.mode];
run(job).then(
  (r) => {
    announce(r as Record<string, unknown>);
    process.exit(0);
  },
  (e) => {
    announce({ error: String(e?.message ?? e) });
    process.exit(1);
  },
);
