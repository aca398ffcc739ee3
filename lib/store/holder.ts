// The one SharedStore of a process, across reloads: made at start, kept on
// a reload whose shared_store settings are unchanged (the connection and
// the local fallback's counts stay), replaced when they change, closed on
// stop. Without shared_store the store is process-local.

import type { SharedStoreConfig } from "../config/shared_store.ts";
import type { Conn, ConnectSpec } from "../runtime/types.ts";
import { LocalStore } from "./local.ts";
import { RedisStore } from "./shared.ts";
import type { SharedStore, StoreLog } from "./types.ts";

export class StoreHolder {
  #store: SharedStore | null = null;
  #key: string | null = null;
  readonly #connect: (spec: ConnectSpec) => Promise<Conn>;
  readonly #log: StoreLog;

  constructor(connect: (spec: ConnectSpec) => Promise<Conn>, log: StoreLog) {
    this.#connect = connect;
    this.#log = log;
  }

  /** The store for `config` (null = no shared_store): the current one if its settings are unchanged. */
  apply(config: SharedStoreConfig | null): SharedStore {
    // Compared whole (credentials and timeout too), never logged.
    const key = config === null ? "local" : JSON.stringify(config);
    if (this.#store !== null && key === this.#key) return this.#store;
    this.#store?.close();
    this.#key = key;
    this.#store = config === null ? new LocalStore() : new RedisStore({
      target: config.target,
      timeoutMs: config.timeoutMs,
      connect: this.#connect,
      log: this.#log,
    });
    return this.#store;
  }

  close(): void {
    this.#store?.close();
  }
}
