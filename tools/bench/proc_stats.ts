// CPU time and resident memory of a process tree, read from /proc (Linux).
// A proxy is measured as its root pid plus every descendant (nginx's master
// and workers, mailgate's master and workers), so "proxy CPU" and "proxy
// RSS" mean the same thing for every target.

import { readdirSync, readFileSync } from "node:fs";

/** USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (getconf CLK_TCK; 100 on Linux). */
const CLOCK_TICKS_PER_S = 100;
/** Fields after the ")" that ends comm: state is field 3, utime 14, stime 15 (proc(5)). */
const PPID_FIELD = 1;
const UTIME_FIELD = 11;
const STIME_FIELD = 12;

/** The fields of /proc/<pid>/stat after "(comm)", or null when the process is gone. */
function statFields(pid: number): string[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses: split after the last ")".
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/** `root` and all its descendants that are alive now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const f = statFields(pid);
    if (!f) continue;
    const ppid = Number(f[PPID_FIELD]);
    let list = children.get(ppid);
    if (!list) children.set(ppid, list = []);
    list.push(pid);
  }
  const out: number[] = [];
  const todo = [root];
  // A pid appears once in /proc, so the walk ends; the cap guards a bad read.
  for (let i = 0; todo.length > 0 && i < 100_000; i++) {
    const pid = todo.pop()!;
    if (statFields(pid) === null) continue;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** utime + stime of the given processes, in seconds (processes that exited count 0). */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) ticks += Number(f[UTIME_FIELD]) + Number(f[STIME_FIELD]);
  }
  return ticks / CLOCK_TICKS_PER_S;
}

/** Sum of VmRSS of the given processes, in bytes. */
export function rssBytes(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
      if (m) kb += Number(m[1]);
    } catch { /* exited */ }
  }
  return kb * 1024;
}

/** CPU seconds of a whole tree, re-walked each time (workers may be restarted). */
export function treeCpuSeconds(root: number): number {
  return cpuSeconds(processTree(root));
}

export function treeRssBytes(root: number): number {
  return rssBytes(processTree(root));
}

/** This process's own CPU seconds (a load generator reports its cost with this). */
export function selfCpuSeconds(): number {
  return cpuSeconds([Number(readFileSync("/proc/self/stat", "latin1").split(" ")[0])]);
}
