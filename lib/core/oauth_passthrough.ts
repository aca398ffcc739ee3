// proxy_oauth_passthrough (mailgate extension, README "OAuth token
// passthrough"): what the three backend logins send instead of
// LOGIN / USER+PASS / AUTH PLAIN when the client signed in with a bearer
// token and the backend is to validate it.
//
// The payload is rebuilt, not replayed: the user is the auth answer's
// Auth-User and the token its Auth-Pass (each falls back to the client's
// own when the auth service sent none), because an auth service may
// rewrite both, as it may for every other method (freenginx's backend
// login uses Auth-User/Auth-Pass, never the client's raw SASL bytes).
// OAUTHBEARER keeps only what RFC 7628 requires (GS2 header with a=, and
// auth=); host= and port= are optional and name mailgate's listener, which
// the backend has no use for.

import type { BackendContext } from "./machine.ts";
import { encodeBase64 } from "./sasl.ts";

/** RFC 7628 §3.2.3: the client's answer to an error challenge (base64 of %x01). */
export const OAUTH_DUMMY_RESPONSE = "AQ==";

export interface OauthLogin {
  /** SASL mechanism name as the backend advertises it. */
  mechanism: "XOAUTH2" | "OAUTHBEARER";
  /** The payload, base64 (a secret: the token is in it). */
  b64: string;
}

/** RFC 5801 saslname: `,` and `=` escaped as `=2C` and `=3D`. */
function escapeSaslName(user: string): string {
  return user.replace(/=/g, "=3D").replace(/,/g, "=2C");
}

/**
 * The backend login to do with the token, or null when the ordinary login
 * applies (passthrough off, or the client did not use a token mechanism).
 */
export function oauthPassthrough(ctx: BackendContext): OauthLogin | null {
  const method = ctx.creds.method;
  if (!ctx.config.proxyOauthPassthrough || (method !== "xoauth2" && method !== "oauthbearer")) {
    return null;
  }
  const user = ctx.user;
  const token = ctx.pass ?? ctx.creds.pass;
  if (method === "xoauth2") {
    return {
      mechanism: "XOAUTH2",
      b64: encodeBase64("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"),
    };
  }
  return {
    mechanism: "OAUTHBEARER",
    b64: encodeBase64("n,a=" + escapeSaslName(user) + ",\x01auth=Bearer " + token + "\x01\x01"),
  };
}

/** Does a list of SASL mechanism names (any case) include `mechanism`? */
export function offersMechanism(names: readonly string[], mechanism: string): boolean {
  return names.some((n) => n.toUpperCase() === mechanism);
}

/** The error-log line when the backend does not offer the client's mechanism. */
export function logUpstreamNoMechanism(mechanism: string): string {
  return `upstream does not offer AUTH ${mechanism}, which proxy_oauth_passthrough needs`;
}
