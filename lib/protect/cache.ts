// The auth cache (mailgate extension, README "Protection"): the auth
// service's answers reused for the same server, protocol, mechanism, client
// address, user and password until a TTL. Entries live in a SharedStore, so
// with `shared_store` every instance finds what one of them stored.
//
// Nothing in the store can be read back without the password: the lookup
// key is HMAC-SHA256(secret, "key" + credentials) and the value (the backend
// and the Auth-User/Auth-Pass replacements) is sealed with AES-256-GCM under
// HMAC-SHA256(secret, "seal" + credentials), so only a client presenting
// the same password (to an instance knowing the secret) can open it.

import { Buffer } from "node:buffer";
import { nodeCrypto } from "../runtime/builtins.ts";
import type { AuthRequest, AuthResult } from "../auth/types.ts";
import type { SharedStore } from "../store/types.ts";
import { cacheHit, cacheMiss, cacheNegativeHit } from "../metrics/mail_metrics.ts";

/** The store key under which instances agree on a secret (first to start sets it). */
export const SHARED_SECRET_KEY = "mailgate:cache-secret";
const KEY_PREFIX = "mailgate:auth:";
/** How often a shared secret is asked again while shared (a flushed or restarted Redis). */
export const RECHECK_MS = 30_000;
/** A secret file shorter than this is refused at load: the HMAC would be guessable. */
export const MIN_SECRET_BYTES = 16;

export interface AuthCacheOptions {
  /** Positive answers kept this long; 0: not cached. */
  ttlMs: number;
  /** Refusals kept this long; 0: not cached. */
  negativeTtlMs: number;
  /** What the answers are valid for: the server's auth service (its URL or table). */
  scope: string;
  /** auth_cache_secret's bytes; null: shared through the store, else one per process. */
  secret: Uint8Array | null;
  store: SharedStore;
  /** The clock for the re-agreement period (tests); default Date.now. */
  now?: () => number;
}

/**
 * The answers a cache may hold: AuthResult minus errors, without the flags
 * that only describe one request (the auth_http headers of an OK are kept,
 * sealed with the rest, for limit_conn's $auth_http_<header>).
 */
type Cached =
  | Omit<Extract<AuthResult, { kind: "ok" }>, "uncacheable">
  | Pick<Extract<AuthResult, { kind: "refused" }>, "kind" | "message" | "waitSec" | "errorCode">;

let processSecret: Uint8Array | undefined;

/** One random secret per process (without a file or a shared store). */
function ownSecret(): Uint8Array {
  return processSecret ??= new Uint8Array(nodeCrypto().randomBytes(32));
}

/**
 * Credentials a cache may answer for: APOP and CRAM-MD5 digests are salted
 * per session (never the same twice), EXTERNAL has no password, an OAuth
 * token's validity is the auth service's to judge each time, and SMTP's
 * "none" is answered by MAIL FROM / RCPT TO, which the key does not hold.
 */
export function cacheable(req: AuthRequest): boolean {
  const m = req.creds.method;
  return m === "plain" && req.waitUser == null && req.waitPass == null;
}

/** Whether an answer may be kept: never errors, WAIT results or temporary SMTP codes. */
export function keepable(r: AuthResult): r is Cached & AuthResult {
  if (r.kind === "error" || r.uncacheable === true) return false;
  if (r.kind === "refused") return !(r.errorCode?.startsWith("4") ?? false);
  return true;
}

export class AuthCache {
  readonly #o: AuthCacheOptions;
  /** The secret the instances agreed on through the store (null: not yet). */
  #agreed: Uint8Array | null = null;
  #asking: Promise<Uint8Array> | null = null;
  #askedAt = -Infinity;
  /** The store was seen local since the last ask: ask again once it is shared. */
  #sawLocal = false;

  constructor(o: AuthCacheOptions) {
    this.#o = o;
  }

  get enabled(): boolean {
    return this.#o.ttlMs > 0 || this.#o.negativeTtlMs > 0;
  }

  /** The cached answer for these credentials, or null. */
  async lookup(req: AuthRequest): Promise<Cached | null> {
    if (!this.enabled || !cacheable(req)) return null;
    const v = await this.#find(req);
    (v === null ? cacheMiss : v.kind === "ok" ? cacheHit : cacheNegativeHit).inc();
    return v;
  }

  async #find(req: AuthRequest): Promise<Cached | null> {
    const k = await this.#keys(req);
    const sealed = await this.#o.store.get(k.id);
    if (sealed === null) return null;
    const value = open(k.seal, sealed);
    if (value === null) return null;
    try {
      const v = JSON.parse(value) as Cached;
      if (v.kind === "ok" && this.#o.ttlMs > 0) return v;
      if (v.kind === "refused" && this.#o.negativeTtlMs > 0) return v;
    } catch { /* not ours: a miss */ }
    return null;
  }

  /** Keeps the answer when the TTLs and the never-cached rules allow. */
  async store(req: AuthRequest, r: AuthResult): Promise<void> {
    if (!this.enabled || !cacheable(req) || !keepable(r)) return;
    const ttl = r.kind === "ok" ? this.#o.ttlMs : this.#o.negativeTtlMs;
    if (ttl <= 0) return;
    const v: Cached = r.kind === "ok"
      ? {
        kind: "ok",
        addr: r.addr,
        port: r.port,
        user: r.user,
        pass: r.pass,
        backendName: r.backendName,
        ...(r.headers ? { headers: r.headers } : {}),
      }
      : { kind: "refused", message: r.message, waitSec: r.waitSec, errorCode: r.errorCode };
    const k = await this.#keys(req);
    await this.#o.store.set(k.id, seal(k.seal, JSON.stringify(v)), ttl);
  }

  /** The lookup key and the sealing key of one set of credentials. */
  async #keys(req: AuthRequest): Promise<{ id: string; seal: Uint8Array }> {
    const secret = await this.#resolveSecret();
    const c = req.creds;
    // Fields are length-prefixed so no two different tuples hash alike.
    const material = [this.#o.scope, req.protocol, c.method, req.clientIp, c.user, c.pass]
      .map((f) => `${f.length}:${f}`).join("|");
    const mac = (label: string) => {
      const h = nodeCrypto().createHmac("sha256", secret);
      h.update(label);
      h.update(Buffer.from(material, "latin1"));
      return h.digest();
    };
    return { id: KEY_PREFIX + mac("key").toString("hex"), seal: new Uint8Array(mac("seal")) };
  }

  /**
   * The secret the keys are made with. With a shared store the instances
   * agree through setIfAbsent; the agreement is asked again (1) after the
   * store was seen local (Redis down at start, or an outage: this process
   * may have answered with its own secret meanwhile, and Redis may have
   * come back empty) and (2) every RECHECK_MS while shared (an answer the
   * local fallback gave on a timeout, a FLUSHALL). A re-ask offers the
   * secret in use, so instances that already agree stay agreed; entries
   * made under a secret that is dropped simply miss. Only the first ask
   * is waited for; re-asks run beside the logins.
   */
  #resolveSecret(): Promise<Uint8Array> {
    if (this.#o.secret !== null) return Promise.resolve(this.#o.secret);
    const store = this.#o.store;
    if (store.state !== "shared") {
      this.#sawLocal = true;
      return Promise.resolve(this.#agreed ?? ownSecret());
    }
    const now = (this.#o.now ?? Date.now)();
    const due = this.#agreed === null || this.#sawLocal || now - this.#askedAt >= RECHECK_MS;
    if (due && this.#asking === null) {
      this.#sawLocal = false;
      this.#askedAt = now;
      const offered = this.#agreed ?? ownSecret();
      this.#asking = store.setIfAbsent(SHARED_SECRET_KEY, hex(offered)).then((v) => {
        this.#asking = null;
        if (store.state !== "shared") {
          // Answered by the local fallback (Redis went away meanwhile): ask again later.
          this.#sawLocal = true;
        } else if (/^[0-9a-f]{64}$/.test(v)) {
          this.#agreed = Uint8Array.from(Buffer.from(v, "hex"));
        }
        return this.#agreed ?? offered;
      });
    }
    return this.#agreed !== null ? Promise.resolve(this.#agreed) : this.#asking!;
  }
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

/** AES-256-GCM: base64 of iv(12) | tag(16) | ciphertext. */
export function seal(key: Uint8Array, text: string): string {
  const c = nodeCrypto();
  const iv = c.randomBytes(12);
  const cipher = c.createCipheriv("aes-256-gcm", key, iv);
  const body = Buffer.concat([cipher.update(text, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64");
}

/** The sealed text, or null when the key is wrong or the value was altered. */
export function open(key: Uint8Array, sealed: string): string | null {
  try {
    const raw = Buffer.from(sealed, "base64");
    if (raw.length < 28) return null;
    const d = nodeCrypto().createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString("utf8");
  } catch {
    return null;
  }
}
