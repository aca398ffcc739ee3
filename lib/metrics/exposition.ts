// Renders metric snapshots as Prometheus text exposition 0.0.4, or as
// OpenMetrics 1.0 when the scraper asks for it (Accept:
// application/openmetrics-text). Counter families are named without
// "_total"; the samples carry it in both formats (OpenMetrics wants the
// family name bare, and Prometheus's own convention is the suffix).

import type { FamilySnapshot } from "./registry.ts";

export const TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
export const OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/** OpenMetrics when the Accept header names it (Prometheus sends it first when it can read it). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && /application\/openmetrics-text/i.test(accept);
}

export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : "\\" + c));
}

function escapeHelp(v: string, om: boolean): string {
  return v.replace(om ? /[\\"\n]/g : /[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\" + c));
}

export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function labelText(names: string[], values: string[], extra?: [string, string]): string {
  const parts: string[] = [];
  for (let i = 0; i < names.length; i++) parts.push(`${names[i]}="${escapeLabelValue(values[i])}"`);
  if (extra) parts.push(`${extra[0]}="${extra[1]}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

export function render(families: FamilySnapshot[], openMetrics: boolean): string {
  const out: string[] = [];
  for (const f of families) {
    const counter = f.type === "counter";
    const head = counter && !openMetrics ? `${f.name}_total` : f.name;
    out.push(`# HELP ${head} ${escapeHelp(f.help, openMetrics)}`);
    out.push(`# TYPE ${head} ${f.type}`);
    for (const s of f.series) {
      if (f.type === "histogram") {
        const bounds = f.buckets ?? [];
        let cum = 0;
        for (let i = 0; i <= bounds.length; i++) {
          cum += s.counts?.[i] ?? 0;
          const le = i < bounds.length ? formatNumber(bounds[i]) : "+Inf";
          out.push(`${f.name}_bucket${labelText(f.labelNames, s.labels, ["le", le])} ${cum}`);
        }
        const l = labelText(f.labelNames, s.labels);
        out.push(`${f.name}_sum${l} ${formatNumber(s.sum ?? 0)}`);
        out.push(`${f.name}_count${l} ${s.value}`);
        if (openMetrics) out.push(`${f.name}_created${l} ${formatNumber(s.created)}`);
        continue;
      }
      const l = labelText(f.labelNames, s.labels);
      if (counter) {
        out.push(`${f.name}_total${l} ${formatNumber(s.value)}`);
        if (openMetrics) out.push(`${f.name}_created${l} ${formatNumber(s.created)}`);
      } else {
        out.push(`${f.name}${l} ${formatNumber(s.value)}`);
      }
    }
  }
  if (openMetrics) out.push("# EOF");
  return out.join("\n") + "\n";
}
