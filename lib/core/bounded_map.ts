// A map with a fixed number of entries; when full, the entry used least
// recently goes. For caches keyed by configuration (TLS contexts, parsed
// PEM, DNS answers): a reload makes new keys, and the old ones must not pile
// up for the life of the process. A Map keeps insertion order, so moving an
// entry to the end on use makes its first key the least recently used.

export class BoundedMap<K, V> {
  readonly #map = new Map<K, V>();
  readonly #max: number;

  constructor(max: number) {
    if (!(max >= 1)) throw new RangeError(`BoundedMap size must be at least 1, not ${max}`);
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** The value, now the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    if (!this.#map.has(key)) return undefined;
    const v = this.#map.get(key)!;
    this.#map.delete(key);
    this.#map.set(key, v);
    return v;
  }

  /** Adds or replaces; the least recently used entries go to make room. */
  set(key: K, value: V): this {
    this.#map.delete(key);
    while (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(key, value);
    return this;
  }

  /** The cached value, or `make()`'s, stored. */
  getOrSet(key: K, make: () => V): V {
    if (this.#map.has(key)) return this.get(key)!;
    const v = make();
    this.set(key, v);
    return v;
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }

  /** Keys from least to most recently used. */
  keys(): IterableIterator<K> {
    return this.#map.keys();
  }
}
