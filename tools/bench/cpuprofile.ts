// Reading a V8 .cpuprofile (Chrome DevTools format, written by Bun's
// --cpu-prof and by the inspector's Profiler domain): self time per
// function, self time per file, and the inclusive time of every function
// (a function counted once per sample even when it recurses).

export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  name: string;
  selfMs: number;
  selfPct: number;
  totalMs: number;
  totalPct: number;
}

/** Shortens a file URL to the part after /main/ (the repository) or its last two segments. */
function where(url: string, line: number): string {
  if (!url) return "";
  const inRepo = url.indexOf("/main/");
  const short = inRepo >= 0 ? url.slice(inRepo + 6) : url.split("/").slice(-2).join("/");
  return `${short}:${line + 1}`;
}

function label(f: CpuProfile["nodes"][number]["callFrame"]): string {
  const name = f.functionName || "(anonymous)";
  const at = where(f.url, f.lineNumber);
  return at ? `${name} ${at}` : name;
}

/** Self and inclusive time per function and self time per file, largest first. */
export function summarize(
  p: CpuProfile,
  top = 25,
): { functions: ProfileRow[]; files: ProfileRow[]; totalMs: number } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let totalUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0; // a sample's time runs until the next one
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
    totalUs += dt;
  }
  const fnSelf = new Map<string, number>();
  const fnTotal = new Map<string, number>();
  const fileSelf = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const l = label(node.callFrame);
    fnSelf.set(l, (fnSelf.get(l) ?? 0) + us);
    const file = node.callFrame.url
      ? where(node.callFrame.url, 0).replace(/:1$/, "")
      : node.callFrame.functionName;
    fileSelf.set(file, (fileSelf.get(file) ?? 0) + us);
    const seen = new Set<string>();
    // Walk to the root; bounded by the tree's depth (each step moves to a parent).
    for (
      let cur: number | undefined = id, d = 0;
      cur !== undefined && d < 10_000;
      cur = parent.get(cur), d++
    ) {
      const name = label(byId.get(cur)!.callFrame);
      if (seen.has(name)) continue;
      seen.add(name);
      fnTotal.set(name, (fnTotal.get(name) ?? 0) + us);
    }
  }
  const rows = (m: Map<string, number>, tot?: Map<string, number>) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) => ({
      name,
      selfMs: us / 1000,
      selfPct: (100 * us) / Math.max(1, totalUs),
      totalMs: (tot?.get(name) ?? us) / 1000,
      totalPct: (100 * (tot?.get(name) ?? us)) / Math.max(1, totalUs),
    }));
  return { functions: rows(fnSelf, fnTotal), files: rows(fileSelf), totalMs: totalUs / 1000 };
}

/** The `top` functions by inclusive time, skipping the roots every sample shares. */
export function inclusive(p: CpuProfile, top = 25): ProfileRow[] {
  const s = summarize(p, 100_000);
  return [...s.functions].sort((a, b) => b.totalMs - a.totalMs)
    .filter((r) => !/^\((root|program)\)/.test(r.name))
    .slice(0, top);
}

export function markdown(p: CpuProfile, top = 25): string {
  const s = summarize(p, top);
  const f = (x: number) => x.toFixed(1);
  const out = [
    `Sampled ${f(s.totalMs)} ms.`,
    "",
    "| self % | self ms | total % | function |",
    "|---:|---:|---:|---|",
  ];
  for (const r of s.functions) {
    out.push(`| ${f(r.selfPct)} | ${f(r.selfMs)} | ${f(r.totalPct)} | \`${r.name}\` |`);
  }
  out.push("", "| total % | function (inclusive) |", "|---:|---|");
  for (const r of inclusive(p, top)) out.push(`| ${f(r.totalPct)} | \`${r.name}\` |`);
  out.push("", "| self % | file |", "|---:|---|");
  for (const r of s.files) out.push(`| ${f(r.selfPct)} | \`${r.name}\` |`);
  return out.join("\n");
}
