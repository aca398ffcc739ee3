// A small metric registry: counters, gauges and histograms in label
// families, and their snapshots (plain data a worker sends to the master,
// which sums them). Counting is cheap by design: a caller looks a child up
// once per label set and keeps it; an event is then one number increment,
// with no string building on the hot path.

export type MetricType = "counter" | "gauge" | "histogram";

export class Counter {
  value = 0;
  /** Unix seconds when this label set was first seen (OpenMetrics _created). */
  readonly created = Date.now() / 1000;
  inc(n = 1): void {
    this.value += n;
  }
}

export class Gauge {
  value = 0;
  readonly created = Date.now() / 1000;
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
  set(v: number): void {
    this.value = v;
  }
}

export class Histogram {
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  readonly counts: number[];
  sum = 0;
  count = 0;
  readonly created = Date.now() / 1000;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array(bounds.length + 1).fill(0);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

type Child = Counter | Gauge | Histogram;

/** What `render` and the master work on: no live objects, JSON-safe. */
export interface SeriesSnapshot {
  labels: string[];
  value: number;
  created: number;
  /** Histograms: per-bucket counts (last is +Inf) and the sum; value is the count. */
  counts?: number[];
  sum?: number;
}

export interface FamilySnapshot {
  name: string;
  help: string;
  type: MetricType;
  labelNames: string[];
  buckets?: number[];
  /** How the master combines workers' series: "min" (e.g. an up gauge: 0 if any is down); default sum. */
  merge?: "min";
  series: SeriesSnapshot[];
}

export interface FamilyOptions {
  /** Histogram bucket upper bounds, ascending. */
  buckets?: number[];
  /**
   * Cardinality bound: at most this many label sets; a new one beyond it is
   * counted under `capLabel` = "other" (e.g. upstreams: first 100, then other).
   */
  cap?: number;
  capLabel?: string;
  /** Series are combined across processes by their minimum, not summed (see FamilySnapshot.merge). */
  merge?: "min";
}

export const OTHER = "other";

export class Family<C extends Child = Child> {
  readonly #children = new Map<string, C>();
  readonly #order: { labels: string[]; child: C }[] = [];
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: string[],
    readonly options: FamilyOptions = {},
  ) {}

  /** The child for these label values, made on first use. Callers on hot paths keep the result. */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) {
      throw new Error(
        `${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`,
      );
    }
    const key = values.join("\u0000");
    let c = this.#children.get(key);
    if (c) return c;
    const cap = this.options.cap;
    if (cap !== undefined && this.#children.size >= cap) {
      const i = this.labelNames.indexOf(this.options.capLabel ?? "");
      if (i >= 0 && values[i] !== OTHER) {
        const capped = values.slice();
        capped[i] = OTHER;
        const ck = capped.join("\u0000");
        c = this.#children.get(ck);
        if (!c) {
          c = this.#make();
          this.#children.set(ck, c);
          this.#order.push({ labels: capped, child: c });
        }
        return c;
      }
    }
    c = this.#make();
    this.#children.set(key, c);
    this.#order.push({ labels: values.slice(), child: c });
    return c;
  }

  #make(): C {
    if (this.type === "histogram") return new Histogram(this.options.buckets ?? []) as C;
    return (this.type === "counter" ? new Counter() : new Gauge()) as C;
  }

  snapshot(): FamilySnapshot {
    const series: SeriesSnapshot[] = this.#order.map(({ labels, child }) => {
      if (child instanceof Histogram) {
        return {
          labels,
          value: child.count,
          created: child.created,
          counts: child.counts.slice(),
          sum: child.sum,
        };
      }
      return { labels, value: child.value, created: child.created };
    });
    const f: FamilySnapshot = {
      name: this.name,
      help: this.help,
      type: this.type,
      labelNames: this.labelNames,
      series,
    };
    if (this.type === "histogram") f.buckets = [...(this.options.buckets ?? [])];
    if (this.options.merge !== undefined) f.merge = this.options.merge;
    return f;
  }
}

export class Registry {
  readonly #families: Family[] = [];
  readonly #names = new Set<string>();

  #add<C extends Child>(f: Family<C>): Family<C> {
    if (this.#names.has(f.name)) throw new Error(`metric ${f.name} registered twice`);
    this.#names.add(f.name);
    this.#families.push(f as unknown as Family);
    return f;
  }
  counter(
    name: string,
    help: string,
    labelNames: string[] = [],
    options?: FamilyOptions,
  ): Family<Counter> {
    return this.#add(new Family<Counter>(name, help, "counter", labelNames, options));
  }
  gauge(
    name: string,
    help: string,
    labelNames: string[] = [],
    options?: FamilyOptions,
  ): Family<Gauge> {
    return this.#add(new Family<Gauge>(name, help, "gauge", labelNames, options));
  }
  histogram(
    name: string,
    help: string,
    labelNames: string[],
    buckets: number[],
  ): Family<Histogram> {
    return this.#add(new Family<Histogram>(name, help, "histogram", labelNames, { buckets }));
  }
  snapshot(): FamilySnapshot[] {
    return this.#families.map((f) => f.snapshot());
  }
}

/**
 * Sums snapshots (one per worker, plus the counters of workers that exited)
 * series by series; `created` is the earliest. Families keep the first
 * snapshot's order; a family or series only one side has is kept as is.
 * With `countersOnly`, gauges are left out (an exited worker's open
 * connections are not open any more).
 */
export function mergeSnapshots(parts: FamilySnapshot[][], countersOnly = false): FamilySnapshot[] {
  const out: FamilySnapshot[] = [];
  const byName = new Map<string, { fam: FamilySnapshot; series: Map<string, SeriesSnapshot> }>();
  for (const part of parts) {
    for (const f of part) {
      if (countersOnly && f.type === "gauge") continue;
      let m = byName.get(f.name);
      if (!m) {
        const fam: FamilySnapshot = { ...f, series: [] };
        m = { fam, series: new Map() };
        byName.set(f.name, m);
        out.push(fam);
      }
      for (const s of f.series) {
        const key = s.labels.join("\u0000");
        const have = m.series.get(key);
        if (!have) {
          const copy: SeriesSnapshot = { ...s, labels: s.labels.slice() };
          if (s.counts) copy.counts = s.counts.slice();
          m.series.set(key, copy);
          m.fam.series.push(copy);
          continue;
        }
        have.value = m.fam.merge === "min" ? Math.min(have.value, s.value) : have.value + s.value;
        have.created = Math.min(have.created, s.created);
        if (have.counts && s.counts) {
          for (let i = 0; i < have.counts.length && i < s.counts.length; i++) {
            have.counts[i] += s.counts[i];
          }
          have.sum = (have.sum ?? 0) + (s.sum ?? 0);
        }
      }
    }
  }
  return out;
}
