// The command line that starts this same program again (a worker process),
// for each way mailgate can run: `deno run main.ts`, `bun main.ts`, or the
// single executable made by `bun build --compile`.

import process from "node:process";

interface BunGlobal {
  main: string;
}
interface DenoGlobal {
  execPath(): string;
  mainModule: string;
}

export function selfCommand(): string[] {
  const bun = (globalThis as { Bun?: BunGlobal }).Bun;
  if (bun) {
    // Compiled executables report their entry as /$bunfs/root/<name>.
    return bun.main.startsWith("/$bunfs") ? [process.execPath] : [process.execPath, bun.main];
  }
  const deno = (globalThis as { Deno?: DenoGlobal }).Deno!;
  const main = new URL(deno.mainModule);
  // A `deno compile` binary has no script to name: it is the program.
  if (main.protocol === "file:" && !/\/deno-compile-/.test(main.pathname)) {
    return [deno.execPath(), "run", "-A", "--unstable-net", main.pathname];
  }
  return [deno.execPath()];
}
