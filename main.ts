// mailgate: the single entrypoint. Parses the command line, picks the socket
// adapter for the runtime it runs on (once), loads the configuration and
// starts the servers. Everything else lives in lib/.

import type { Runtime } from "./lib/runtime/types.ts";
import { loadRuntime } from "./lib/runtime/select.ts";
import { CliError, parseCli, usage } from "./lib/cli.ts";
import { NAME, VERSION } from "./lib/version.ts";
import { run } from "./lib/app.ts";

// Annotated: runtime.exit() narrows `opts` only through a declared type.
const runtime: Runtime = await loadRuntime();

let opts;
try {
  opts = parseCli(runtime.args());
} catch (e) {
  if (!(e instanceof CliError)) throw e;
  console.error(`${NAME}: ${e.message}`);
  runtime.exit(1);
}

if (opts.help || opts.version || opts.versionFull) {
  if (opts.help) console.error(usage());
  else {
    console.error(`${NAME} version: ${NAME}/${VERSION}`);
    if (opts.versionFull) {
      console.error(`runtime: ${runtime.name} ${runtime.version}`);
      console.error(`platform: ${(globalThis as { process?: { platform: string; arch: string } }).process?.platform ?? "?"}`);
    }
  }
  runtime.exit(0);
}

runtime.exit(await run(runtime, opts));
