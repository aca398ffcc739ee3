// What main.ts does once it has a runtime and the command line: load the
// configuration (or test it, or signal a running instance), open the
// listeners, and run until a signal stops it. Returns the exit code.

import { readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import process from "node:process";
import { Buffer } from "node:buffer";
import { type CliOptions, DEFAULT_CONF, type SignalCommand } from "./cli.ts";
import { ConfigError, formatConfigError, formatConfigWarning, loadConfig } from "./config/load.ts";
import { runtimeWarnings } from "./config/runtime_warnings.ts";
import type { Config, ConfigWarning } from "./config/types.ts";
import type { Runtime } from "./runtime/types.ts";
import { NAME } from "./version.ts";
import { hashPassword } from "./auth/password_hash.ts";
import { isWorker, serveMaster, workerCount } from "./master.ts";
import { serveProxy, type StartupLog as StartupLogT } from "./serve.ts";

/** Start-up messages (before the configured logs exist): stderr or the -e file. */
class StartupLog implements StartupLogT {
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
  // Workers are started with the master's command line: the master already said this.
  if (!isWorker()) for (const w of config.warnings) startup.write("warn", warningText(w));

  if (opts.signal) return sendSignal(config, opts.signal, startup);
  // What this runtime will not apply: said by a start and by -t alike (the
  // README's migration steps rely on -t reporting it; nginx -t prints every
  // [warn] of a start, with -q too). Workers: the master said it.
  if (!isWorker()) for (const w of runtimeWarnings(config, runtime)) startup.write("warn", warningText(w));

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

  const load = { file, prefix, globals: opts.globals ?? undefined };
  if (isWorker()) return await serveProxy(runtime, config, load, startup, true);
  if (workerCount(config) > 1) return await serveMaster(runtime, config, load, startup);
  return await serveProxy(runtime, config, load, startup, false);
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

