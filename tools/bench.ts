// deno task bench: mailgate vs nginx's mail proxy, side by side, as ratios.
//
//   deno run -A --unstable-net tools/bench.ts [--quick | --full] [options]
//
// Both proxies run the SAME configuration file (nginx's mail {} syntax,
// tools/bench/config.ts), the same auth_http service (raw node:net,
// HTTP/1.0, close per request; its own process) and the same lean IMAP /
// POP3 / SMTP backend (its own process). The load generator is a third
// process (Bun). Everything is on loopback, every load is bounded in count
// and time, and every process started is stopped by pid (also on Ctrl-C
// and on errors).
//
// Rounds alternate the targets: nginx, mailgate under Deno, under Bun, the
// Bun-compiled executable, then again; each with worker_processes 1 and
// auto. Each metric is the median over the rounds; ratios are
// median(mailgate) / median(nginx).
//
// Before/after (a change's cost, same run): --baseline=PATH adds a second
// executable, e.g. built from an older commit, as the target "baseline";
// --baseline-rev=REV builds it from git revision REV first
// (tools/bench_baseline.sh: a detached worktree in the temp directory,
// removed afterwards), and --binary-rev=REV does the same for "binary"
// (instead of building the work tree, uncommitted changes included).
// "baseline" runs in the same rounds, just before "binary" (just after it
// in even rounds, so neither always follows the other), and every table
// gets a binary/baseline column; a before/after table per worker setting
// adds each round's own binary/baseline ratio and both values, so the
// noise is beside the median. For example, the refactor's check:
//   deno task bench --baseline-rev=7108edd --binary-rev=HEAD \
//     --targets=nginx,baseline,binary --loads=login,relay --workers=1 --no-docs
//
// Loads per proxy start (after a short warm-up):
//   memory  proxy RSS (sum of VmRSS over the proxy's process tree) before and
//           while N authenticated IMAP sessions sit idle; bytes/session 1 s
//           after they are held and after --mem-settle s idle (the target's
//           verdict: a garbage-collected runtime returns the login phase's
//           garbage only once idle); first --mem-rounds rounds only
//   login   IMAP LOGIN / POP3 USER+PASS / SMTP EHLO+AUTH PLAIN storms: C
//           concurrent loops of connect -> greeting -> login -> logout ->
//           close; sessions/s, p50/p99, proxy CPU per session (utime+stime
//           of the proxy tree from /proc)
//   login-cache  the IMAP storm on a server block that has auth_cache_ttl 60s
//           in mailgate's configuration (nginx: the same block without it,
//           nginx has no auth cache), after one warm-up login: every loop
//           logs in as the same user, so mailgate answers from its cache
//           (process-local: no shared_store) and never asks the auth service
//   tls     the IMAP storm on an implicit-TLS listener (full handshake each)
//   relay   backend -> client (IMAP literal) and client -> backend (SMTP
//           DATA) of B bytes; MB/s (10^6) and proxy CPU s per GB (10^9)
//   latency one session sending L commands one at a time, each once the
//           previous reply is complete (IMAP `a DOWN 2000`, POP3 RETR, SMTP
//           RCPT TO, and IMAP on the implicit-TLS listener); ms per command,
//           through the proxy and straight to the backend (the "direct" rows)
// and once per setting, alternating targets: cold start, exec -> first
// greeting byte.
//
// Options: --quick (default) | --full, --rounds=N, --targets=nginx,deno,bun,binary,
//   --workers=1,auto, --loads=login,login-cache,tls,relay,memory,cold,latency, --duration=ms,
//   --concurrency=N, --tls-concurrency=N, --sessions=N (memory), --mib=N (relay), --cold-runs=N,
//   --latency-commands=N (latency, default 100; 300 with --full),
//   --mem-settle=S (idle seconds, default 45), --mem-rounds=N (default 1),
//   --binary=PATH (measure this executable as "binary" instead of building
//   one with bun build --compile), --binary-rev=REV (build "binary" from git
//   revision REV), --baseline=PATH | --baseline-rev=REV (before/after, above;
//   adds "baseline" to --targets), --no-docs (do not rewrite docs/benchmarks.md),
//   --auth-keepalive=N (mailgate's config gets auth_http_keepalive N; nginx
//   cannot keep auth connections, so its config stays the same).
// Prints the markdown tables, then ONE line of JSON with every number.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { freePorts } from "../tests/helpers/ports.ts";
import { VERSION } from "../lib/version.ts";
import { benchConfig, type BenchPorts } from "./bench/config.ts";
import { coldStartTree } from "./bench/cold_start.ts";
import { latency, loginStorm, memory, type Parties, relay, warmUp } from "./bench/loads.ts";
import { BUN, DENO, ROOT, TLS_DIR } from "./bench/paths.ts";
import { start, type Started, stopAll } from "./bench/processes.ts";
import { type Executables, NGINX, proxyCommand, startProxy, type Target } from "./bench/proxy.ts";
import { ensureNginx } from "./bench/install_nginx.ts";
import {
  beforeAfter,
  beforeAfterTable,
  costTable,
  hasBeforeAfter,
  medians,
  type Metrics,
  ROWS,
  table,
  verdict,
  writeDocs,
} from "./bench/report.ts";

type Workers = "1" | "auto";
type Load = "login" | "login-cache" | "tls" | "relay" | "memory" | "cold" | "latency";

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
if (flag("help") || argv.includes("-h")) {
  // The header comment is the usage text.
  const text = readFileSync(new URL(import.meta.url), "utf8").split("\n");
  console.log(
    text.slice(0, text.findIndex((l) => !l.startsWith("//"))).map((l) => l.replace(/^\/\/ ?/, ""))
      .join("\n"),
  );
  process.exit(0);
}
const opt = (name: string, def: string) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const FULL = flag("full");
const MiB = 1 << 20;
/** fds: 2 per proxied session in the proxy, under the 20,000 per-process limit, with room to spare. */
const FD_LIMIT = 20_000;
const FD_SPARE = 400;
const FULL_SESSIONS = Math.min(10_000, Math.floor((FD_LIMIT - FD_SPARE) / 2));

const O = {
  mode: FULL ? "full" : "quick",
  rounds: Number(opt("rounds", FULL ? "5" : "3")),
  targets: opt("targets", "nginx,deno,bun,binary").split(",") as Target[],
  workers: opt("workers", "1,auto").split(",") as Workers[],
  loads: new Set(
    opt("loads", "login,login-cache,tls,relay,memory,cold,latency").split(",") as Load[],
  ),
  durationMs: Number(opt("duration", FULL ? "5000" : "1500")),
  warmMs: FULL ? 1000 : 400,
  concurrency: Number(opt("concurrency", "32")),
  // nginx's mail module leaves Nagle on for the client connection, so its
  // greeting after a TLS 1.3 handshake waits ~40 ms for a delayed ACK; more
  // loops in flight keep the CPU, not that wait, the limit.
  tlsConcurrency: Number(opt("tls-concurrency", "128")),
  sessions: Number(opt("sessions", FULL ? String(FULL_SESSIONS) : "2000")),
  relayBytes: Number(opt("mib", FULL ? "1024" : "256")) * MiB,
  coldRuns: Number(opt("cold-runs", FULL ? "10" : "5")),
  /** Commands per latency session. */
  latCommands: Number(opt("latency-commands", FULL ? "300" : "100")),
  /** Idle seconds before the baseline RSS and before the settled one (memory load). */
  memSettleS: Number(opt("mem-settle", "45")),
  /** The memory load runs in the first N rounds only (it is the slowest and the steadiest). */
  memRounds: Number(opt("mem-rounds", "1")),
  docs: !flag("no-docs"),
  /** A prebuilt executable to measure as "binary" instead of building one. */
  /** Absolute: the proxies run with their prefix as working directory. */
  binary: opt("binary", "") && resolve(opt("binary", "")),
  /** Build "binary" from this git revision instead (tools/bench_baseline.sh). */
  binaryRev: opt("binary-rev", ""),
  /** The "before" executable of a before/after comparison (absolute, as binary). */
  baseline: opt("baseline", "") && resolve(opt("baseline", "")),
  /** Build "baseline" from this git revision (tools/bench_baseline.sh). */
  baselineRev: opt("baseline-rev", ""),
  /** auth_http_keepalive for mailgate's configuration (0: the shared file unchanged). */
  authKeepalive: Number(opt("auth-keepalive", "0")),
};
if (!O.targets.includes("nginx")) {
  throw new Error("--targets must include nginx (ratios are against it)");
}
if (O.binary && O.binaryRev) throw new Error("--binary and --binary-rev: choose one");
if (O.baseline && O.baselineRev) throw new Error("--baseline and --baseline-rev: choose one");
const wantBaseline = O.baseline !== "" || O.baselineRev !== "";
if (O.targets.includes("baseline") && !wantBaseline) {
  throw new Error("target baseline needs --baseline=PATH or --baseline-rev=REV");
}
if (wantBaseline && !O.targets.includes("baseline")) {
  // Just before binary, or last: a comparison that was asked for is measured.
  const at = O.targets.indexOf("binary");
  O.targets.splice(at < 0 ? O.targets.length : at, 0, "baseline");
}

const log = (s: string) => process.stderr.write(s + "\n");

function machine() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    nproc: availableParallelism(),
    kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(),
    memGB: Math.round(totalmem() / 1e9),
    nofile: FD_LIMIT,
  };
}

function versions() {
  const out = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    return `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n")[0];
  };
  return {
    mailgate: VERSION,
    nginx: out(NGINX, ["-v"]).replace(/^nginx version: /, ""),
    deno: out(DENO, ["--version"]),
    bun: out(BUN, ["--version"]),
  };
}

/** The executable under test, built fresh from this tree (build/mailgate may be stale). */
function buildBinary(dir: string): string {
  const out = join(dir, "mailgate");
  const r = spawnSync(BUN, [
    "build",
    "--compile",
    "--bytecode",
    "--format=esm",
    join(ROOT, "main.ts"),
    "--outfile",
    out,
  ], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`bun build --compile failed: ${r.stderr}`);
  return out;
}

/** The executable of git revision `rev`, built by tools/bench_baseline.sh into `out`. */
function buildRevision(rev: string, out: string): string {
  const r = spawnSync(join(ROOT, "tools", "bench_baseline.sh"), [rev, out], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 240_000,
  });
  if (r.status !== 0) throw new Error(`tools/bench_baseline.sh ${rev} failed: ${r.stderr}`);
  return out;
}

/** A revision as a short commit id (for the record: HEAD moves). */
function shortRev(rev: string): string {
  const r = spawnSync("git", ["-C", ROOT, "rev-parse", "--short", `${rev}^{commit}`], {
    encoding: "utf8",
  });
  return r.status === 0 ? r.stdout.trim() : rev;
}

/**
 * Round `round`'s order: "baseline" and "binary" trade places in even rounds,
 * so a drift within a round (another job starting, a warm cache) does not
 * always favour the same side of a before/after comparison.
 */
function roundOrder(round: number): Target[] {
  const order = [...O.targets];
  const a = order.indexOf("baseline");
  const b = order.indexOf("binary");
  if (round % 2 === 0 && a >= 0 && b >= 0) [order[a], order[b]] = [order[b], order[a]];
  return order;
}

/** All loads against one started proxy; a failed load leaves its metrics out and is noted. */
async function measure(
  p: Parties,
  ports: BenchPorts,
  backendPorts: Record<"imap" | "pop3" | "smtp", number>,
  note: (s: string) => void,
  where: string,
  round: number,
): Promise<Metrics> {
  const m: Metrics = {};
  const guard = async (name: string, f: () => Promise<void>) => {
    try {
      await f();
    } catch (e) {
      note(`${where} ${name}: ${(e as Error).message}`);
    }
  };
  await guard("warm-up", () => warmUp(p, ports, O.warmMs));
  if (O.loads.has("memory") && round <= O.memRounds) {
    await guard("memory", async () => {
      const r = await memory(p, ports.imap, O.sessions, O.memSettleS * 1000);
      m.mem_sessions = r.sessions;
      m.mem_bytes_per_session = r.bytesPerSession;
      m.mem_bytes_per_session_1s = r.bytesPerSessionFirst;
      m.mem_rss_before_mb = r.rssBefore / 1e6;
      m.mem_rss_after_mb = r.rssAfter / 1e6;
      m.mem_open_ms = r.openMs;
      if (r.errors) note(`${where} memory: ${r.errors} sessions failed to open`);
    });
  }
  const storms: [string, keyof BenchPorts, "imap" | "pop3" | "smtp", boolean, Load][] = [
    ["imap", "imap", "imap", false, "login"],
    ["pop3", "pop3", "pop3", false, "login"],
    ["smtp", "smtp", "smtp", false, "login"],
    ["imapcache", "imapCache", "imap", false, "login-cache"],
    ["tls", "imaps", "imap", true, "tls"],
    ["tlsec", "imapsEc", "imap", true, "tls"],
  ];
  for (const [key, port, proto, tls, load] of storms) {
    if (!O.loads.has(load)) continue;
    await guard(key, async () => {
      // The cache's one miss (and the JIT's first pass over the hit path)
      // before the measured storm.
      if (load === "login-cache") await loginStorm(p, ports[port], proto, tls, 1, O.warmMs);
      const conc = tls ? O.tlsConcurrency : O.concurrency;
      const r = await loginStorm(p, ports[port], proto, tls, conc, O.durationMs);
      m[`${key}_per_s`] = r.perSec;
      m[`${key}_p50_ms`] = r.p50Ms;
      m[`${key}_p99_ms`] = r.p99Ms;
      m[`${key}_cpu_ms`] = r.proxyCpuMs;
      m[`${key}_gen_cpu_ms`] = r.genCpuMs;
      m[`${key}_auth_cpu_ms`] = r.authCpuMs;
      m[`${key}_backend_cpu_ms`] = r.backendCpuMs;
      m[`${key}_errors`] = r.errors;
      if (r.errors) {
        note(
          `${where} ${key}: ${r.errors} of ${
            r.sessions + r.errors
          } sessions failed (${r.firstError})`,
        );
      }
    });
  }
  if (O.loads.has("latency")) {
    const lat: [string, keyof BenchPorts, "imap" | "pop3" | "smtp", boolean][] = [
      ["imap", "imap", "imap", false],
      ["pop3", "pop3", "pop3", false],
      ["smtp", "smtp", "smtp", false],
      ["imaps", "imaps", "imap", true],
    ];
    for (const [key, port, proto, tls] of lat) {
      await guard(`latency ${key}`, async () => {
        m[`lat_${key}_ms`] = await latency(ports[port], proto, tls, O.latCommands);
      });
      // The same client straight to the backend (which has no TLS), in every
      // round, so each column's direct figure was taken under its own load.
      if (tls) continue;
      await guard(`latency ${key} direct`, async () => {
        m[`lat_${key}_direct_ms`] = await latency(
          backendPorts[proto],
          proto,
          false,
          O.latCommands,
          true,
        );
      });
    }
  }
  if (O.loads.has("relay")) {
    for (const dir of ["down", "up"] as const) {
      await guard(`relay ${dir}`, async () => {
        const r = await relay(p, ports, dir, O.relayBytes);
        m[`${dir}_mb_s`] = r.mbPerSec;
        m[`${dir}_cpu_s_gb`] = r.proxyCpuSPerGB;
        m[`${dir}_gen_cpu_s_gb`] = r.genCpuSPerGB;
        m[`${dir}_backend_cpu_s_gb`] = r.backendCpuSPerGB;
      });
    }
  }
  return m;
}

async function main() {
  ensureNginx(log);
  const dir = mkdtempSync(join(tmpdir(), "mailgate-bench-"));
  const onSignal = () => {
    log("interrupted: stopping every process started");
    stopAll().finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const t0 = Date.now();
  const notes: string[] = [];
  const note = (s: string) => {
    const line = s.replace(/\s+/g, " ").slice(0, 300);
    notes.push(line);
    log(`  ! ${line}`);
  };
  try {
    const exes: Executables = {
      binary: !O.targets.includes("binary")
        ? ""
        : O.binary !== ""
        ? O.binary
        : O.binaryRev !== ""
        ? buildRevision(O.binaryRev, join(dir, "mailgate-binary"))
        : buildBinary(dir),
      baseline: !O.targets.includes("baseline")
        ? ""
        : O.baseline !== ""
        ? O.baseline
        : buildRevision(O.baselineRev, join(dir, "mailgate-baseline")),
    };
    /** What "binary" and "baseline" are, for the record. */
    const origin = {
      binary: O.binaryRev ? `git ${shortRev(O.binaryRev)}` : O.binary || "this work tree",
      baseline: O.baselineRev ? `git ${shortRev(O.baselineRev)}` : O.baseline,
    };
    for (const t of O.targets) mkdirSync(join(dir, `prefix-${t}`));
    const [imap, pop3, smtp, imaps, imapsEc, imapCache] = await freePorts(6);
    const ports: BenchPorts = { imap, pop3, smtp, imaps, imapsEc, imapCache };
    const backend = start("backend", BUN, [join(ROOT, "tools/bench/backend.ts")]);
    const bports = await backend.next(20_000, "backend ports");
    const backendPorts = bports as Record<"imap" | "pop3" | "smtp", number>;
    const auth = start("auth", BUN, [
      join(ROOT, "tools/bench/auth_server.ts"),
      JSON.stringify(bports),
    ]);
    const authPort = (await auth.next(20_000, "auth port")).port as number;
    const confs = {} as Record<Workers, string>;
    /** mailgate's file: the same, or with auth_http_keepalive (--auth-keepalive) and the cache block's auth_cache_ttl (login-cache). */
    const mgConfs = {} as Record<Workers, string>;
    for (const w of O.workers) {
      const input = {
        workers: w,
        ports,
        authPort,
        cert: join(TLS_DIR, "server.pem"),
        key: join(TLS_DIR, "server.key"),
        ecCert: join(TLS_DIR, "server_ec.pem"),
        ecKey: join(TLS_DIR, "server_ec.key"),
        workerConnections: FD_LIMIT - 10,
      };
      confs[w] = join(dir, `bench-${w}.conf`);
      writeFileSync(confs[w], benchConfig(input));
      mgConfs[w] = confs[w];
      const authCache = O.loads.has("login-cache");
      if (O.authKeepalive > 0 || authCache) {
        mgConfs[w] = join(dir, `bench-${w}-mailgate.conf`);
        writeFileSync(
          mgConfs[w],
          benchConfig({ ...input, authKeepalive: O.authKeepalive, authCache }),
        );
      }
    }
    /** The configuration file a target runs with these workers. */
    const confFor = (t: Target, w: Workers) => (t === "nginx" ? confs[w] : mgConfs[w]);
    log(
      `mailgate bench (${O.mode}): ${O.rounds} rounds × workers ${O.workers.join(",")} × ${
        O.targets.join(",")
      }`,
    );

    const raw = {} as Record<Workers, Record<Target, Metrics[]>>;
    for (const w of O.workers) {
      raw[w] = Object.fromEntries(O.targets.map((t) => [t, []])) as unknown as Record<
        Target,
        Metrics[]
      >;
    }
    const proxyLoads = [...O.loads].some((l) => l !== "cold");
    for (let round = 1; round <= O.rounds && proxyLoads; round++) {
      for (const w of O.workers) {
        for (const t of roundOrder(round)) {
          const where = `round ${round} workers=${w} ${t}`;
          log(`${where} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
          let proxy: Started | null = null;
          try {
            proxy = await startProxy(t, dir, confFor(t, w), exes, ports.imap);
            raw[w][t].push(
              await measure({ proxy, auth, backend }, ports, backendPorts, note, where, round),
            );
          } catch (e) {
            note(`${where}: ${(e as Error).message}`);
            // An empty round keeps round i at index i for every target (the
            // before/after table pairs rounds by index).
            raw[w][t].push({});
          } finally {
            await proxy?.stop();
          }
        }
      }
    }

    if (O.loads.has("cold")) {
      for (const w of O.workers) {
        log(`cold start, workers=${w}: ${O.coldRuns} runs × ${O.targets.join(",")}`);
        const cold = Object.fromEntries(O.targets.map((t) => [t, [] as number[]]));
        for (let i = 0; i < O.coldRuns; i++) {
          for (const t of roundOrder(i + 1)) {
            const prefix = join(dir, `prefix-${t}`);
            const [cmd, args] = proxyCommand(t, prefix, confFor(t, w), exes);
            try {
              cold[t].push(await coldStartTree(cmd, args, ports.imap, undefined));
            } catch (e) {
              note(`cold start workers=${w} ${t}: ${(e as Error).message}`);
            }
          }
        }
        // Cold starts fill in the rounds' metrics one value per round slot.
        for (const t of O.targets) {
          cold[t].forEach((ms, i) => {
            const rounds = raw[w][t];
            if (!rounds[i]) rounds[i] = {};
            rounds[i].cold_ms = ms;
          });
        }
      }
    }

    const med = {} as Record<Workers, Record<Target, Metrics>>;
    for (const w of O.workers) {
      med[w] = Object.fromEntries(O.targets.map((t) => [t, medians(raw[w][t])])) as Record<
        Target,
        Metrics
      >;
    }
    const ratios: Record<
      string,
      Record<string, Record<string, { ratio: number | null; ok: boolean | null }>>
    > = {};
    for (const w of O.workers) {
      ratios[w] = {};
      for (const t of O.targets.filter((x) => x !== "nginx")) {
        ratios[w][t] = {};
        for (const row of ROWS) {
          const v = verdict(row, med[w][t][row.key], med[w].nginx[row.key]);
          if (v.ratio !== null) ratios[w][t][row.key] = v;
        }
      }
    }

    const mach = machine();
    const vers = versions();
    const date = new Date().toISOString().slice(0, 19).replace("T", " ") + " UTC";
    const cmdline = `deno task bench${argv.length ? " " + argv.join(" ") : ""}`;
    const sizes =
      `login storms ${O.durationMs} ms × ${O.concurrency} concurrent loops (TLS: ${O.tlsConcurrency}), relay ${
        O.relayBytes / MiB
      } MiB each way, ${O.latCommands} commands one at a time, ${O.sessions} idle sessions, ${O.coldRuns} cold starts, ${O.rounds} rounds`;
    let md = `### Latest run: ${date} (${O.mode})\n\n`;
    md +=
      `* Machine: ${mach.cpu}, ${mach.nproc} cores (nproc), ${mach.memGB} GB, Linux ${mach.kernel}, RLIMIT_NOFILE ${mach.nofile}\n`;
    md +=
      `* Versions: mailgate ${vers.mailgate}, nginx ${vers.nginx} (mail module), ${vers.deno}, Bun ${vers.bun}\n`;
    md += `* Command: \`${cmdline}\` (from the repository root; about ${
      Math.round((Date.now() - t0) / 60000)
    } min)\n`;
    md += `* Sizes: ${sizes}\n`;
    const ba = hasBeforeAfter(O.targets);
    if (ba) {
      md += `* Before/after: baseline = ${origin.baseline}, binary = ${origin.binary}\n`;
    }
    md += "\n";
    for (const w of O.workers) {
      md += `#### worker_processes ${w}\n\n${table(med[w], O.targets)}\n\n`;
      if (ba) {
        md +=
          `#### Before/after, worker_processes ${w}: binary (${origin.binary}) / baseline (${origin.baseline})\n\n${
            beforeAfterTable(med[w], raw[w])
          }\n\n`;
      }
    }
    const allRuns = O.workers.flatMap((w) => O.targets.flatMap((t) => raw[w][t]));
    md += `#### What the rest of the set-up costs (the proxy shares 2 cores with these)\n\n${
      costTable(allRuns)
    }\n`;
    if (notes.length) {
      md += `\n#### Notes from this run\n\n${notes.map((n) => `* ${n}`).join("\n")}\n`;
    }

    const json = {
      kind: "mailgate-bench",
      date,
      mode: O.mode,
      command: cmdline,
      machine: mach,
      versions: vers,
      options: { ...O, loads: [...O.loads] },
      medians: med,
      ratios,
      ...(ba
        ? {
          before_after: {
            ...origin,
            ...Object.fromEntries(O.workers.map((w) => [w, beforeAfter(med[w], raw[w])])),
          },
        }
        : {}),
      rounds: raw,
      notes,
    };
    // Four significant digits: more than the noise of any of these numbers.
    const jsonLine = JSON.stringify(
      json,
      (_k, v) => typeof v === "number" && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v,
    );
    console.log(md);
    console.log(jsonLine);
    if (O.docs) {
      writeDocs(
        join(ROOT, "docs", "benchmarks.md"),
        `${md}\n<details><summary>JSON line</summary>\n\n\`\`\`json\n${jsonLine}\n\`\`\`\n\n</details>\n`,
      );
      log("wrote docs/benchmarks.md");
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
