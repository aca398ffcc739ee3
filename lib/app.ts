// What main.ts does once it has a runtime and the command line: load the
// configuration (or test it, or signal a running instance), open the
// listeners, and run until a signal stops it. Returns the exit code.

import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import process from "node:process";
import { Buffer } from "node:buffer";
import { type CliOptions, DEFAULT_CONF, type SignalCommand } from "./cli.ts";
import { ConfigError, formatConfigError, formatConfigWarning, loadConfig } from "./config/load.ts";
import { pendingWarnings } from "./config/pending.ts";
import type { Config, ConfigWarning } from "./config/types.ts";
import { ErrorLog, reopenLogFiles } from "./log/error_log.ts";
import { buildServerRuntimes, MailProxy } from "./proxy/server.ts";
import type { Runtime } from "./runtime/types.ts";
import { NAME, VERSION } from "./version.ts";
import { hashPassword } from "./auth/password_hash.ts";

/** Start-up messages (before the configured logs exist): stderr or the -e file. */
class StartupLog {
  #file: string | null;
  constructor(target: string | null, prefix: string) {
    this.#file = target && target !== "stderr" ? (isAbsolute(target) ? target : resolve(prefix, target)) : null;
  }
  write(level: string, message: string): void {
    const line = `${NAME}: [${level}] ${message}\n`;
    if (this.#file) {
      try {
        writeFileSync(this.#file, line, { flag: "a" });
        return;
      } catch { /* fall back to stderr */ }
    }
    process.stderr.write(line);
  }
}

const warningText = (w: ConfigWarning): string => formatConfigWarning(w);

const SIGNAL_OF: Record<SignalCommand, string> = {
  stop: "SIGTERM",
  quit: "SIGQUIT",
  reload: "SIGHUP",
  // SIGUSR1 would open the V8 inspector under Deno (platform-notes Q5), so
  // mailgate reopens its logs on SIGUSR2 on both runtimes.
  reopen: "SIGUSR2",
};

async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of process.stdin) chunks.push(c as Uint8Array);
  return new TextDecoder().decode(Buffer.concat(chunks));
}

export async function run(runtime: Runtime, opts: CliOptions): Promise<number> {
  const prefix = resolve(opts.prefix ?? process.cwd());
  const file = resolve(prefix, opts.conf ?? DEFAULT_CONF);
  const startup = new StartupLog(opts.errorLog, prefix);

  if (opts.hashPassword) {
    const pw = (await readStdin()).replace(/\r?\n$/, "");
    console.log(await hashPassword(pw));
    return 0;
  }

  let config: Config;
  try {
    config = await loadConfig({ file, prefix, globals: opts.globals ?? undefined });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    startup.write("emerg", formatConfigError(e));
    if (opts.test) process.stderr.write(`${NAME}: configuration file ${file} test failed\n`);
    return 1;
  }
  for (const w of config.warnings) startup.write("warn", warningText(w));

  if (opts.signal) return sendSignal(config, opts.signal, startup);

  if (opts.test) {
    if (!opts.quiet) {
      process.stderr.write(`${NAME}: the configuration file ${file} syntax is ok\n`);
      process.stderr.write(`${NAME}: configuration file ${file} test is successful\n`);
    }
    if (opts.dump) {
      for (const f of config.files) process.stdout.write(`# configuration file ${f.path}:\n${f.text}\n`);
    }
    return 0;
  }

  for (const w of pendingWarnings(config)) startup.write("warn", warningText(w));
  return await serve(runtime, config, { file, prefix, globals: opts.globals ?? undefined }, startup);
}

function sendSignal(config: Config, cmd: SignalCommand, startup: StartupLog): number {
  if (!config.pid) {
    startup.write("error", `no "pid" file is configured in ${config.file}, cannot send "${cmd}"`);
    return 1;
  }
  let pid: number;
  try {
    pid = Number(readFileSync(config.pid, "utf8").trim());
  } catch (e) {
    startup.write("error", `open() "${config.pid}" failed (${(e as Error).message})`);
    return 1;
  }
  if (!Number.isInteger(pid) || pid <= 0) {
    startup.write("error", `invalid PID number "${pid}" in "${config.pid}"`);
    return 1;
  }
  try {
    process.kill(pid, SIGNAL_OF[cmd]);
  } catch (e) {
    startup.write("alert", `kill(${pid}, ${SIGNAL_OF[cmd]}) failed (${(e as Error).message})`);
    return 1;
  }
  return 0;
}

interface LoadArgs {
  file: string;
  prefix: string;
  globals?: string;
}

async function serve(runtime: Runtime, config: Config, load: LoadArgs, startup: StartupLog): Promise<number> {
  let mainLog: ErrorLog;
  let proxy: MailProxy;
  try {
    mainLog = new ErrorLog(config.errorLogs, runtime.pid);
    const servers = await buildServerRuntimes(config, runtime, mainLog);
    proxy = new MailProxy(runtime, config.workerConnections);
    await proxy.apply(servers);
  } catch (e) {
    startup.write("emerg", (e as Error).message);
    return 1;
  }
  if (config.pid) {
    try {
      writeFileSync(config.pid, `${runtime.pid}\n`);
    } catch (e) {
      startup.write("emerg", `open() "${config.pid}" failed (${(e as Error).message})`);
      proxy.stopAccepting();
      return 1;
    }
  }
  let pidFile = config.pid;
  mainLog.notice(`${NAME}/${VERSION} (${runtime.name} ${runtime.version}) started, listening on ${proxy.addresses().join(" ")}`);

  let stopping = false;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((r) => (resolveExit = r));
  const finish = (code: number) => {
    if (pidFile) {
      try {
        unlinkSync(pidFile);
      } catch { /* already gone */ }
    }
    resolveExit(code);
  };

  const fastStop = (sig: string) => {
    mainLog.notice(`signal ${sig} received, exiting`);
    stopping = true;
    proxy.stopAccepting();
    proxy.abortAll();
    finish(0);
  };
  const gracefulStop = () => {
    if (stopping) return;
    stopping = true;
    mainLog.notice("signal SIGQUIT received, gracefully shutting down");
    proxy.stopAccepting();
    const limit = config.workerShutdownTimeout;
    const timer = limit !== null ? setTimeout(() => proxy.abortAll(), limit) : null;
    proxy.idle().then(() => {
      if (timer) clearTimeout(timer);
      mainLog.notice("exiting");
      finish(0);
    });
  };
  const reload = async () => {
    if (stopping) return;
    mainLog.notice("signal SIGHUP received, reconfiguring");
    try {
      const next = await loadConfig(load);
      const nextLog = new ErrorLog(next.errorLogs, runtime.pid);
      const servers = await buildServerRuntimes(next, runtime, nextLog);
      await proxy.apply(servers, next.workerConnections);
      mainLog = nextLog;
      config = next;
      if (next.pid !== pidFile) {
        if (pidFile) try { unlinkSync(pidFile); } catch { /* gone */ }
        pidFile = next.pid;
        if (pidFile) writeFileSync(pidFile, `${runtime.pid}\n`);
      }
      for (const w of [...next.warnings, ...pendingWarnings(next)]) mainLog.warn(warningText(w));
      mainLog.notice("reconfiguring done");
    } catch (e) {
      const msg = e instanceof ConfigError ? formatConfigError(e) : (e as Error).message;
      mainLog.log("emerg", msg);
      mainLog.error("reload failed, the running configuration is kept");
    }
  };

  runtime.onSignal("SIGTERM", () => fastStop("SIGTERM"));
  runtime.onSignal("SIGINT", () => fastStop("SIGINT"));
  runtime.onSignal("SIGQUIT", gracefulStop);
  runtime.onSignal("SIGHUP", () => void reload());
  runtime.onSignal("SIGUSR2", () => reopenLogFiles());
  if (runtime.name === "bun") runtime.onSignal("SIGUSR1", () => reopenLogFiles());
  return await exited;
}
