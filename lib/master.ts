// worker_processes N > 1: this process becomes the master. It opens no
// sockets itself; it starts N copies of itself (workers) that all listen on
// the same ports with SO_REUSEPORT, restarts a worker that dies, and passes
// signals on (reload, graceful and fast stop, log reopen).
//
// A worker knows it is one by MAILGATE_WORKER in its environment. It tells
// the master it is serving by writing "ready\n" on stdout, and stops fast
// when the master is gone.

import { availableParallelism } from "node:os";
import process from "node:process";
import { ConfigError, formatConfigError, loadConfig } from "./config/load.ts";
import type { Config } from "./config/types.ts";
import { ErrorLog, reopenLogFiles } from "./log/error_log.ts";
import { PidFile } from "./pid_file.ts";
import type { ChildHandle, Runtime, SignalName } from "./runtime/types.ts";
import type { LoadArgs, StartupLog } from "./serve.ts";
import { NAME, VERSION } from "./version.ts";
import { Aggregator, parseReport } from "./status/aggregate.ts";
import { masterStatusServer } from "./status/instance.ts";

export const WORKER_ENV = "MAILGATE_WORKER";
/** A worker that does not report ready within this time is a start-up failure. */
const READY_TIMEOUT_MS = 30_000;
/** Restart back-off after a worker dies: doubles up to the cap, reset after a minute of life. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;
const STABLE_MS = 60_000;
/** How often a worker checks that its master is still there. */
const MASTER_POLL_MS = 1000;
/** Most bytes of one worker report line (a snapshot with capped label sets is far below). */
const MAX_REPORT = 4 << 20;

export function workerCount(config: Config): number {
  return config.workerProcesses === "auto" ? Math.max(1, availableParallelism()) : config.workerProcesses;
}

export function isWorker(): boolean {
  return process.env[WORKER_ENV] !== undefined;
}

interface Worker {
  slot: number;
  proc: ChildHandle;
  startedAt: number;
  ready: boolean;
}

export class Master {
  #runtime: Runtime;
  #args: string[];
  #log: ErrorLog;
  #workers = new Map<number, Worker>();
  #count: number;
  #stopping = false;
  #backoff = new Map<number, number>();
  #onAllExited: (() => void) | null = null;
  /** The workers' metric reports, summed for status_listen. */
  readonly aggregator = new Aggregator();

  constructor(runtime: Runtime, args: string[], count: number, log: ErrorLog) {
    this.#runtime = runtime;
    this.#args = args;
    this.#count = count;
    this.#log = log;
  }

  set log(log: ErrorLog) {
    this.#log = log;
  }

  /** Starts every worker; rejects (after stopping them) if one fails to come up. */
  async start(): Promise<void> {
    const ready = [];
    for (let slot = 0; slot < this.#count; slot++) ready.push(this.#spawn(slot));
    try {
      await Promise.all(ready);
    } catch (e) {
      this.signal("SIGTERM");
      await this.exited();
      throw e;
    }
  }

  #spawn(slot: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let out = "";
      const decoder = new TextDecoder();
      const proc = this.#runtime.spawnSelf(this.#args, { [WORKER_ENV]: String(slot) }, {
        stdout: (d) => {
          // Lines: "ready", then a metrics report a second (lib/status/worker_report.ts).
          out += decoder.decode(d, { stream: true });
          let nl: number;
          while ((nl = out.indexOf("\n")) >= 0) {
            const line = out.slice(0, nl);
            out = out.slice(nl + 1);
            if (line === "ready" && !w.ready) {
              w.ready = true;
              clearTimeout(timer);
              resolve();
              continue;
            }
            const r = parseReport(line, slot, proc.pid);
            if (r) this.aggregator.report(r);
          }
          // A worker writes nothing else; a line without its end is bounded all the same.
          if (out.length > MAX_REPORT) out = "";
        },
        exit: (code, sig) => exited(code, sig),
      });
      const w: Worker = { slot, proc, startedAt: Date.now(), ready: false };
      this.#workers.set(slot, w);
      this.#log.notice(`start worker process ${proc.pid}`);
      const timer = setTimeout(() => {
        if (!w.ready) reject(new Error(`worker process ${proc.pid} did not start within ${READY_TIMEOUT_MS / 1000}s`));
      }, READY_TIMEOUT_MS);
      const exited = (code: number | null, sig: string | null) => {
        clearTimeout(timer);
        this.#workers.delete(slot);
        this.aggregator.exited(slot, proc.pid);
        const how = sig ? `on signal ${sig}` : `with code ${code}`;
        if (!w.ready) {
          reject(new Error(`worker process ${proc.pid} exited ${how} during start-up`));
          this.#checkAllExited();
          return;
        }
        if (this.#stopping || slot >= this.#count) {
          this.#log.notice(`worker process ${proc.pid} exited ${how}`);
          this.#checkAllExited();
          return;
        }
        this.#log.log("alert", `worker process ${proc.pid} exited ${how}, restarting`);
        this.#restart(slot, Date.now() - w.startedAt);
      };
    });
  }

  #restart(slot: number, lived: number): void {
    const prev = lived > STABLE_MS ? 0 : this.#backoff.get(slot) ?? 0;
    const delay = prev === 0 ? RESTART_MIN_MS : Math.min(prev * 2, RESTART_MAX_MS);
    this.#backoff.set(slot, delay);
    setTimeout(() => {
      if (this.#stopping || this.#workers.has(slot) || slot >= this.#count) return;
      this.#spawn(slot).catch((e) => this.#log.log("alert", (e as Error).message));
    }, delay);
  }

  /** Sends a signal to every worker. */
  signal(sig: SignalName): void {
    if (sig === "SIGTERM" || sig === "SIGINT" || sig === "SIGQUIT") this.#stopping = true;
    for (const w of this.#workers.values()) w.proc.kill(sig);
  }

  /** A reload may change the number of workers: start the missing, stop the extra gracefully. */
  resize(count: number): void {
    const old = this.#count;
    this.#count = count;
    for (let slot = old; slot < count; slot++) {
      this.#spawn(slot).catch((e) => this.#log.log("alert", (e as Error).message));
    }
    for (const w of this.#workers.values()) if (w.slot >= count) w.proc.kill("SIGQUIT");
  }

  #checkAllExited(): void {
    if (this.#workers.size === 0) this.#onAllExited?.();
  }

  /** Resolves when every worker has exited. */
  exited(): Promise<void> {
    if (this.#workers.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#onAllExited = resolve));
  }

  pids(): number[] {
    return [...this.#workers.values()].map((w) => w.proc.pid).filter((p) => p !== 0);
  }

  get runtime(): Runtime {
    return this.#runtime;
  }
}

/**
 * In a worker: stop fast when the master goes away (even killed with
 * SIGKILL): the parent pid changes when the master dies. (Watching stdin
 * for EOF was tried first: under Deno a signal made the pending stdin read
 * end as if the master had gone.)
 */
export function watchMaster(onGone: () => void): void {
  const master = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== master) {
      clearInterval(timer);
      onGone();
    }
  }, MASTER_POLL_MS);
  (timer as { unref?: () => void }).unref?.();
}

/** In a worker: tell the master the listeners are open. */
export function reportReady(): void {
  process.stdout.write("ready\n");
}

/** Runs as the master of `workerCount(config)` workers until a signal stops it. */
export async function serveMaster(
  runtime: Runtime,
  config: Config,
  load: LoadArgs,
  startup: StartupLog,
): Promise<number> {
  let log = new ErrorLog(config.errorLogs, runtime.pid, runtime);
  const pid = new PidFile();
  const count = workerCount(config);
  const master = new Master(runtime, runtime.args(), count, log);
  const status = masterStatusServer(runtime, master.aggregator);
  try {
    pid.set(config.pid, runtime.pid);
    await master.start();
    await status.apply(config.mail?.statusListen ?? []);
  } catch (e) {
    startup.write("emerg", (e as Error).message);
    master.signal("SIGTERM");
    await master.exited();
    await status.close();
    pid.remove();
    return 1;
  }
  log.notice(`${NAME}/${VERSION} (${runtime.name} ${runtime.version}) master started with ${count} worker processes`);

  let stopping = false;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((r) => (resolveExit = r));
  const stop = (sig: SignalName) => {
    if (stopping && sig === "SIGQUIT") return;
    stopping = true;
    log.notice(`signal ${sig} received, ${sig === "SIGQUIT" ? "gracefully shutting down" : "exiting"}`);
    master.signal(sig);
    void status.close();
    master.exited().then(() => {
      pid.remove();
      log.notice("exiting");
      resolveExit(0);
    });
  };
  const reload = async () => {
    if (stopping) return;
    log.notice("signal SIGHUP received, reconfiguring");
    try {
      // The master checks the new configuration first: workers only reload one that loads.
      const next = await loadConfig(load);
      const nextLog = new ErrorLog(next.errorLogs, runtime.pid, runtime);
      pid.set(next.pid, runtime.pid);
      log = nextLog;
      master.log = nextLog;
      master.signal("SIGHUP");
      master.resize(workerCount(next));
      await status.apply(next.mail?.statusListen ?? []);
    } catch (e) {
      log.log("emerg", e instanceof ConfigError ? formatConfigError(e) : (e as Error).message);
      log.error("reload failed, the running configuration is kept");
    }
  };
  const reopen = () => {
    reopenLogFiles();
    master.signal("SIGUSR2");
  };
  runtime.onSignal("SIGTERM", () => stop("SIGTERM"));
  runtime.onSignal("SIGINT", () => stop("SIGTERM"));
  runtime.onSignal("SIGQUIT", () => stop("SIGQUIT"));
  runtime.onSignal("SIGHUP", () => void reload());
  runtime.onSignal("SIGUSR2", reopen);
  if (runtime.name === "bun") runtime.onSignal("SIGUSR1", reopen);
  return await exited;
}
