// A brute-force run against mailgate's failed-login limit (README
// "Protection", issue 16): wrong passwords at full speed from many client
// addresses (127.0.x.y source addresses: any 127/8 address binds on
// loopback), while a good user keeps logging in from another address.
//
//   deno run -A --unstable-net tools/bruteforce.ts [--target=binary|deno|bun]
//     [--attempts=20000] [--addresses=500] [--limit=5] [--window=300]
//     [--concurrency=64]
//
// mailgate runs `auth_fail_limit_ip LIMIT WINDOWs` on one IMAP server block,
// with this tool's own auth_http service (in this process: it counts the
// requests per Client-IP and accepts only the good user's password) and the
// benchmark's lean backend. Printed: attempts/s, auth requests per attacking
// address (at most LIMIT each: the run is shorter than the window, and it
// refuses to judge otherwise), the good user's logins (all must succeed),
// mailgate's RSS before, at its peak and after. Bounded: a fixed number of
// attempts, 10 s per attempt, 240 s in all; every process started is
// stopped by its pid. Exit status 1 when a check fails.

import { connect, createServer, type Socket } from "node:net";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import process from "node:process";
import { type Running, startMailgate, type Target } from "../tests/helpers/mailgate.ts";
import { freePorts } from "../tests/helpers/ports.ts";
import { BUN, ROOT } from "./bench/paths.ts";
import { start, stopAll } from "./bench/processes.ts";
import { treeRssBytes } from "./bench/proc_stats.ts";

const argv = process.argv.slice(2);
const opt = (name: string, def: string) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const O = {
  target: opt("target", "binary") as Target,
  attempts: Number(opt("attempts", "20000")),
  addresses: Number(opt("addresses", "500")),
  limit: Number(opt("limit", "5")),
  windowS: Number(opt("window", "300")),
  concurrency: Number(opt("concurrency", "64")),
};
const ATTEMPT_MS = 10_000;
const RUN_MS = 240_000;
const GOOD_USER = "bench";
const GOOD_PASS = "secret";
const GOOD_FROM = "127.1.0.1";
if (O.addresses < 1 || O.addresses > 250 * 250) throw new Error("--addresses: 1 to 62500");

/** The i-th attacking address: 127.0.1.1, 127.0.1.2, … 127.0.1.250, 127.0.2.1, … */
const address = (i: number) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;

/** The auth service: counts per Client-IP; OK only for the good user's password. */
function authService(backendPort: number) {
  const perIp = new Map<string, number>();
  let good = 0;
  const server = createServer((sock: Socket) => {
    sock.on("error", () => {});
    let head = "";
    sock.on("data", (d: Buffer) => {
      head += d.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const h = (name: string) =>
        new RegExp(`\r\n${name}: ([^\r]*)`, "i").exec(head.slice(0, end + 2))?.[1] ?? "";
      const ip = h("Client-IP");
      perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
      const ok = h("Auth-User") === GOOD_USER && h("Auth-Pass") === GOOD_PASS;
      if (ok) good++;
      sock.end(
        ok
          ? `HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: ${backendPort}\r\n\r\n`
          : "HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\n\r\n",
      );
    });
  });
  return { server, perIp, good: () => good };
}

/** One IMAP login from `from`; resolves with the tagged reply (or "error: …"). */
function attempt(port: number, from: string, user: string, pass: string): Promise<string> {
  return new Promise((resolve) => {
    let buf = "";
    let sent = false;
    let done = false;
    const s = connect({ host: "127.0.0.1", port, localAddress: from });
    const finish = (r: string) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => finish("error: timeout"), ATTEMPT_MS);
    s.on("error", (e) => finish(`error: ${e.message}`));
    s.on("close", () => finish("error: closed before the reply"));
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl + 1);
        buf = buf.slice(nl + 1);
        if (!sent && line.startsWith("* OK")) {
          sent = true;
          s.write(`a LOGIN ${user} ${pass}\r\n`);
        } else if (line.startsWith("a ")) return finish(line.trimEnd());
      }
    });
  });
}

async function main() {
  const backend = start("backend", BUN, [join(ROOT, "tools/bench/backend.ts")]);
  const bports = await backend.next(20_000, "backend ports");
  const auth = authService(bports.imap as number);
  await new Promise<void>((r) => auth.server.listen(0, "127.0.0.1", () => r()));
  const authPort = (auth.server.address() as { port: number }).port;
  const [port] = await freePorts(1);
  let mg: Running | null = null;
  let failed = false;
  const check = (ok: boolean, what: string) => {
    console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
    if (!ok) failed = true;
  };
  try {
    mg = await startMailgate(
      O.target,
      `
error_log stderr notice;
events { worker_connections 4096; }
mail {
  auth_http 127.0.0.1:${authPort}/auth;
  server { listen 127.0.0.1:${port}; protocol imap; auth_fail_limit_ip ${O.limit} ${O.windowS}s; }
}
`,
    );
    const pid = mg.proc.pid!;
    await attempt(port, GOOD_FROM, GOOD_USER, GOOD_PASS); // first-use paths
    const rssBefore = treeRssBytes(pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, treeRssBytes(pid))), 200);

    const t0 = performance.now();
    const deadline = t0 + RUN_MS;
    let next = 0;
    const replies = new Map<string, number>();
    let errors = 0;
    let firstError = "";
    const loop = async () => {
      while (next < O.attempts && performance.now() < deadline) {
        const i = next++;
        const r = await attempt(port, address(i % O.addresses), `victim${i % 997}`, `guess${i}`);
        if (r.startsWith("error")) {
          errors++;
          firstError ||= r;
        } else replies.set(r, (replies.get(r) ?? 0) + 1);
      }
    };
    let attacking = true;
    const good = { ok: 0, bad: 0, maxMs: 0, first: "" };
    const goodLoop = async () => {
      while (attacking && performance.now() < deadline) {
        const s = performance.now();
        const r = await attempt(port, GOOD_FROM, GOOD_USER, GOOD_PASS);
        good.maxMs = Math.max(good.maxMs, performance.now() - s);
        if (r.startsWith("a OK")) good.ok++;
        else {
          good.bad++;
          good.first ||= r;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const goodDone = goodLoop();
    await Promise.all(Array.from({ length: O.concurrency }, loop));
    attacking = false;
    await goodDone;
    const ms = performance.now() - t0;
    clearInterval(sampler);
    const rssAfter = treeRssBytes(pid);

    const attackIps = [...auth.perIp.entries()].filter(([ip]) => ip !== GOOD_FROM);
    const asked = attackIps.map(([, n]) => n);
    const maxPerIp = Math.max(0, ...asked);
    const lockouts = mg.stderr().match(/failed logins from \S+ within/g)?.length ?? 0;
    const done = [...replies.values()].reduce((a, b) => a + b, 0);
    console.log(
      `mailgate (${O.target}), auth_fail_limit_ip ${O.limit} ${O.windowS}s, ` +
        `${O.attempts} wrong passwords from ${O.addresses} addresses, ${O.concurrency} loops`,
    );
    console.log(
      `  attempts answered   ${done} in ${(ms / 1000).toFixed(1)} s (${
        Math.round(done / (ms / 1000))
      }/s), errors ${errors}${firstError ? ` (${firstError})` : ""}`,
    );
    console.log(
      `  replies             ${
        [...replies].map(([r, n]) => `${JSON.stringify(r)} ×${n}`).join(", ")
      }`,
    );
    console.log(
      `  auth requests       ${
        asked.reduce((a, b) => a + b, 0)
      } from ${attackIps.length} attacking addresses (max ${maxPerIp} per address), ${auth.good()} for the good user`,
    );
    console.log(`  lockouts logged     ${lockouts} (warn, once per address)`);
    console.log(
      `  good user           ${good.ok} logins ok, ${good.bad} refused${
        good.first ? ` (${good.first})` : ""
      }, slowest ${good.maxMs.toFixed(0)} ms`,
    );
    console.log(
      `  RSS                 before ${(rssBefore / 1e6).toFixed(1)} MB, peak ${
        (rssPeak / 1e6).toFixed(1)
      } MB, after ${(rssAfter / 1e6).toFixed(1)} MB`,
    );
    check(
      ms < O.windowS * 1000,
      "the run fits in one window (else per-address counts span windows)",
    );
    check(done + errors === O.attempts, "every attempt was made within the time bound");
    check(errors === 0, "no attempt failed at the socket level");
    check(maxPerIp <= O.limit, `the auth service saw at most ${O.limit} per address`);
    // Address i gets attempts i, i + addresses, …: those with LIMIT or more are locked out.
    const reach = Array.from(
      { length: O.addresses },
      (_, i) => Math.ceil((O.attempts - i) / O.addresses) >= O.limit,
    ).filter(Boolean).length;
    check(lockouts === reach, `one lockout warning per address that reached the limit (${reach})`);
    check(good.ok > 0 && good.bad === 0, "the good user always logged in");
    check(!mg.stderr().includes("guess"), "no password in the log");
  } finally {
    await mg?.stop();
    auth.server.close();
    await stopAll();
  }
  process.exit(failed ? 1 : 0);
}

await main();
