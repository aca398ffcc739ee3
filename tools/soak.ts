// deno task soak: many concurrent sessions through the real mailgate
// process, each moving its own unique payload, checked byte for byte.
//
//   deno run -A --unstable-net tools/soak.ts [--sessions=1000] [--seconds=60]
//       [--targets=deno,bun,binary] [--protocols=imap,pop3,smtp]
//       [--max-payload=65536 (16384 above 2000 sessions)] [--transfers=3] [--settle=10]
//
// Three processes per target, each with its own fd budget: this one (the
// load: `sessions` concurrent client loops), a backend (this file again with
// tools/soak/backend.ts; IMAP, POP3 and SMTP listeners) and mailgate (under Deno,
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
//
// The parts, in tools/soak/: types.ts (options and results), payload.ts
// (payloads and their check), wire.ts (reader and writes), backend.ts,
// clients.ts (the sessions per protocol), target.ts (one target's run and
// its measurements), report.ts (verdict and tables); this file is the
// command line.

import process from "node:process";
import type { Target } from "../tests/helpers/mailgate.ts";
import { soakTarget } from "./soak/target.ts";
import { table, verdict } from "./soak/report.ts";
import type { Proto, SoakOptions, TargetResult } from "./soak/types.ts";

export { Payload, PayloadCheck } from "./soak/payload.ts";
export { SoakBackend } from "./soak/backend.ts";
export { soakTarget } from "./soak/target.ts";
export { table, verdict } from "./soak/report.ts";
export type { Proto, ProtoStats, SoakOptions, TargetResult } from "./soak/types.ts";

// ---- command line --------------------------------------------------------------------

function arg(name: string, dflt: string): string {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}

async function main(): Promise<number> {
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
