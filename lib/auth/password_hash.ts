// Password checks for the built-in auth table (table.ts): the `scrypt:`
// stored form, APOP and CRAM-MD5 digests, and constant-time comparison.
//
// Passwords arriving from clients are binary strings (one char per byte,
// lib/core/bytes.ts); passwords written in the table file or given on the
// command line are text and are used as their UTF-8 bytes, so a client that
// sends the UTF-8 encoding of the same text matches.

import { nodeCrypto } from "../runtime/builtins.ts";
import { binaryToBytes, bytesToBinary, textBytes } from "../core/bytes.ts";

export interface ScryptParams {
  /** CPU/memory cost, a power of two > 1. */
  N: number;
  r: number;
  p: number;
}

/** Parameters of newly hashed passwords (scrypt's interactive-login recommendation). */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { N: 16384, r: 8, p: 1 };
export const SCRYPT_SALT_BYTES = 16;
export const SCRYPT_KEY_BYTES = 32;
/**
 * Largest scrypt working memory a stored hash may ask for. Every login that
 * is checked needs this much while it runs; the default parameters use 16 MiB.
 */
export const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
const MIN_KEY_BYTES = 16;
const MAX_KEY_BYTES = 64;

/** A parsed `scrypt:<N>:<r>:<p>:<salt b64>:<hash b64>` field. */
export interface ScryptHash extends ScryptParams {
  salt: Uint8Array;
  hash: Uint8Array;
}

/** Memory OpenSSL's scrypt needs for these parameters (its maxmem check). */
function scryptMemory(p: ScryptParams): number {
  return 128 * p.r * (p.N + p.p + 2);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function fromBase64(s: string): Uint8Array | null {
  if (s === "" || !BASE64.test(s)) return null;
  return binaryToBytes(atob(s));
}

function toBase64(b: Uint8Array): string {
  return btoa(bytesToBinary(b));
}

function positiveInt(s: string): number | null {
  return /^[1-9][0-9]{0,9}$/.test(s) ? Number(s) : null;
}

/** Parse the stored form; null if it is not a valid, affordable scrypt hash. */
export function parseScryptHash(field: string): ScryptHash | null {
  const parts = field.split(":");
  if (parts.length !== 6 || parts[0] !== "scrypt") return null;
  const N = positiveInt(parts[1]);
  const r = positiveInt(parts[2]);
  const p = positiveInt(parts[3]);
  const salt = fromBase64(parts[4]);
  const hash = fromBase64(parts[5]);
  if (N === null || r === null || p === null || salt === null || hash === null) return null;
  if (N < 2 || (N & (N - 1)) !== 0) return null;
  if (hash.length < MIN_KEY_BYTES || hash.length > MAX_KEY_BYTES) return null;
  if (scryptMemory({ N, r, p }) > MAX_SCRYPT_MEMORY) return null;
  return { N, r, p, salt, hash };
}

function deriveKey(
  password: Uint8Array,
  salt: Uint8Array,
  params: ScryptParams,
  len: number,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const { N, r, p } = params;
    // maxmem with some room: OpenSSL's own accounting is slightly above scryptMemory().
    const maxmem = scryptMemory(params) + 1024 * 1024;
    nodeCrypto().scrypt(password, salt, len, { N, r, p, maxmem }, (err, key) => {
      if (err) reject(err);
      else resolve(new Uint8Array(key.buffer, key.byteOffset, key.length));
    });
  });
}

/**
 * The stored form of a password (text, used as UTF-8):
 * `scrypt:<N>:<r>:<p>:<salt b64>:<hash b64>` with a random 16-byte salt.
 */
export async function hashPassword(
  password: string,
  params: ScryptParams = DEFAULT_SCRYPT_PARAMS,
): Promise<string> {
  const salt = new Uint8Array(nodeCrypto().randomBytes(SCRYPT_SALT_BYTES));
  const key = await deriveKey(textBytes(password), salt, params, SCRYPT_KEY_BYTES);
  return `scrypt:${params.N}:${params.r}:${params.p}:${toBase64(salt)}:${toBase64(key)}`;
}

/** Does the client's password (binary string) match the stored hash? */
export async function verifyScrypt(stored: ScryptHash, password: string): Promise<boolean> {
  const key = await deriveKey(binaryToBytes(password), stored.salt, stored, stored.hash.length);
  return nodeCrypto().timingSafeEqual(key, stored.hash);
}

/**
 * Constant-time equality of two binary strings. Both are hashed first so
 * that neither the content nor the length of a secret leaks through timing.
 */
export function equalSecrets(a: string, b: string): boolean {
  const ha = nodeCrypto().createHash("sha256").update(binaryToBytes(a)).digest();
  const hb = nodeCrypto().createHash("sha256").update(binaryToBytes(b)).digest();
  return nodeCrypto().timingSafeEqual(ha, hb);
}

/** APOP (RFC 1939): lower-case hex MD5 of the greeting's salt followed by the password. */
export function apopDigest(salt: string, password: string): string {
  return nodeCrypto().createHash("md5").update(binaryToBytes(salt + password)).digest("hex");
}

/** CRAM-MD5 (RFC 2195): lower-case hex HMAC-MD5 of the challenge, keyed with the password. */
export function cramMd5Digest(salt: string, password: string): string {
  return nodeCrypto().createHmac("md5", binaryToBytes(password)).update(binaryToBytes(salt)).digest("hex");
}

/** Compare a client's hex digest (any case) with an expected lower-case one. */
export function digestMatches(clientDigest: string, expected: string): boolean {
  return equalSecrets(clientDigest.replace(/[A-F]/g, (c) => c.toLowerCase()), expected);
}
