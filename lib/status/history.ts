// The last five minutes of the status page's totals, one sample a second,
// kept by the process that serves status_listen so that a page opened now
// draws its charts at once. A timer samples only while status_listen is
// open; a sample is three numbers.

export const HISTORY_POINTS = 300;
export const SAMPLE_MS = 1000;

export interface Sample {
  /** Unix ms. */
  t: number;
  ok: number;
  failed: number;
  open: number;
}

export class History {
  readonly #points: Sample[] = [];
  #timer: ReturnType<typeof setInterval> | null = null;

  add(s: Sample): void {
    if (this.#points.length >= HISTORY_POINTS) this.#points.shift();
    this.#points.push(s);
  }

  points(): Sample[] {
    return this.#points.slice();
  }

  start(sample: () => Sample): void {
    if (this.#timer !== null) return;
    this.add(sample());
    this.#timer = setInterval(() => this.add(sample()), SAMPLE_MS);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
