// Serving in one process: open the listeners, then run until a signal stops
// it. Used when worker_processes is 1, and by each worker process.
//
// Signals: TERM/INT fast stop; QUIT graceful stop (worker_shutdown_timeout
// bounds it); HUP reload (sockets kept, running sessions keep their
// settings, a bad configuration is refused and the old one stays); USR2
// (and USR1 under Bun) reopen the log files.

import { ConfigError, formatConfigError, formatConfigWarning, loadConfig } from "./config/load.ts";
import { runtimeWarnings } from "./config/runtime_warnings.ts";
import type { Config } from "./config/types.ts";
import { ErrorLog, reopenLogFiles } from "./log/error_log.ts";
import { reportReady, watchMaster } from "./master.ts";
import { PidFile } from "./pid_file.ts";
import { routeNotices } from "./proxy/auth_service.ts";
import { buildServerRuntimes, MailProxy, type ServerRuntime } from "./proxy/server.ts";
import type { Runtime } from "./runtime/types.ts";
import { StoreHolder } from "./store/holder.ts";
import { LocalStore } from "./store/local.ts";
import { watchSharedStore } from "./metrics/mail_metrics.ts";
import { NAME, VERSION } from "./version.ts";
import { runtimeLabel, singleStatusServer } from "./status/instance.ts";
import { startWorkerReports } from "./status/worker_report.ts";

export interface LoadArgs {
  file: string;
  prefix: string;
  globals?: string;
}

/** Start-up messages before the configured logs exist: stderr or the -e file. */
export interface StartupLog {
  write(level: string, message: string): void;
}

export async function serveProxy(
  runtime: Runtime,
  config: Config,
  load: LoadArgs,
  startup: StartupLog,
  worker: boolean,
): Promise<number> {
  let mainLog: ErrorLog;
  let servers: ServerRuntime[];
  const proxy = new MailProxy(runtime, config.workerConnections, worker);
  const pid = new PidFile();
  // One store per process; its messages go to the current main log (reloads replace it).
  const stores = new StoreHolder((spec) => runtime.connect(spec), (level, message) => mainLog.log(level, message));
  // mailgate_shared_store_up: only with shared_store (else the store is local by design).
  watchSharedStore(() => proxy.store instanceof LocalStore ? null : proxy.store);
  // status_listen: served here in a single process; by the master when there are workers.
  const status = worker ? null : singleStatusServer(runtime);
  try {
    mainLog = new ErrorLog(config.errorLogs, runtime.pid, runtime);
    servers = await buildServerRuntimes(config, runtime, mainLog, () => proxy.store);
    await proxy.apply(servers);
    proxy.store = stores.apply(config.mail?.sharedStore ?? null);
    await status?.apply(config.mail?.statusListen ?? []);
    if (!worker) pid.set(config.pid, runtime.pid);
  } catch (e) {
    startup.write("emerg", (e as Error).message);
    stores.close();
    await proxy.stopAccepting();
    await status?.close();
    return 1;
  }
  mainLog.notice(
    `${NAME}/${VERSION} (${runtime.name} ${runtime.version}) ${worker ? "worker" : ""}${worker ? " " : ""}` +
      `started, listening on ${proxy.addresses().join(" ")}`,
  );
  // Where logins go, once (not per worker): a fresh install's first login fails otherwise unexplained.
  if (!worker) for (const line of routeNotices(servers)) mainLog.notice(line);

  let stopping = false;
  let resolveExit: (code: number) => void = () => {};
  const exited = new Promise<number>((r) => (resolveExit = r));
  const finish = (code: number) => {
    stores.close();
    pid.remove();
    void status?.close();
    resolveExit(code);
  };

  const fastStop = (why: string) => {
    mainLog.notice(`${why}, exiting`);
    stopping = true;
    proxy.abortAll();
    proxy.stopAccepting().then(() => finish(0));
  };
  const gracefulStop = () => {
    if (stopping) return;
    stopping = true;
    const limit = config.workerShutdownTimeout;
    const timer = limit !== null ? setTimeout(() => proxy.abortAll(), limit) : null;
    proxy.stopAccepting().then(() => {
      mainLog.notice("signal SIGQUIT received, gracefully shutting down");
      return proxy.idle();
    }).then(() => {
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
      const nextLog = new ErrorLog(next.errorLogs, runtime.pid, runtime);
      await proxy.apply(await buildServerRuntimes(next, runtime, nextLog, () => proxy.store), next.workerConnections);
      proxy.store = stores.apply(next.mail?.sharedStore ?? null);
      await status?.apply(next.mail?.statusListen ?? []);
      if (!worker) pid.set(next.pid, runtime.pid);
      mainLog = nextLog;
      config = next;
      for (const w of [...next.warnings, ...runtimeWarnings(next, runtime)]) mainLog.warn(formatConfigWarning(w));
      mainLog.notice("reconfiguring done");
    } catch (e) {
      mainLog.log("emerg", e instanceof ConfigError ? formatConfigError(e) : (e as Error).message);
      mainLog.error("reload failed, the running configuration is kept");
    }
  };
  const reopen = () => {
    for (const path of reopenLogFiles()) mainLog.error(`reopen of "${path}" failed, still writing to the old file`);
  };

  runtime.onSignal("SIGTERM", () => fastStop("signal SIGTERM received"));
  runtime.onSignal("SIGINT", () => fastStop("signal SIGINT received"));
  runtime.onSignal("SIGQUIT", gracefulStop);
  runtime.onSignal("SIGHUP", () => void reload());
  runtime.onSignal("SIGUSR2", reopen);
  if (runtime.name === "bun") runtime.onSignal("SIGUSR1", reopen);
  if (worker) {
    watchMaster(() => fastStop("master process is gone"));
    reportReady();
    startWorkerReports(runtimeLabel(runtime));
  }
  return await exited;
}
