// The status listener's data source in each mode: a single process reports
// its own registry; a master (worker_processes > 1) reports its own
// process metrics plus the sum of its workers' reports (aggregate.ts).

import { processSnapshot } from "../metrics/process.ts";
import type { Runtime } from "../runtime/types.ts";
import type { Aggregator } from "./aggregate.ts";
import { RECENT_MAX, recentErrors } from "./recent_errors.ts";
import { StatusServer } from "./server.ts";
import { sampleOf, statusJson } from "./status_json.ts";
import { History } from "./history.ts";

export const runtimeLabel = (runtime: Runtime) => `${runtime.name} ${runtime.version}`;

export function singleStatusServer(runtime: Runtime): StatusServer {
  const label = runtimeLabel(runtime);
  const history = new History();
  return new StatusServer(runtime, {
    metrics: () => processSnapshot(label),
    status: () => statusJson(processSnapshot(label), recentErrors(), [], history.points()),
    sample: () => sampleOf(processSnapshot(label)),
    history,
  });
}

export function masterStatusServer(runtime: Runtime, agg: Aggregator): StatusServer {
  const label = runtimeLabel(runtime);
  const history = new History();
  return new StatusServer(runtime, {
    metrics: () => agg.total(processSnapshot(label)),
    status: () =>
      statusJson(
        agg.total(processSnapshot(label)),
        agg.errors(recentErrors(), RECENT_MAX),
        agg.workers(),
        history.points(),
      ),
    sample: () => sampleOf(agg.total(processSnapshot(label))),
    history,
  });
}
