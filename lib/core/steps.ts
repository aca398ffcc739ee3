// Small builders for the steps pre-auth machines return (machine.ts), and
// the SASL wait states they share.

import type { ClientStep } from "./machine.ts";

export const CLOSE: ClientStep = { kind: "close" };
/** The client ended the session itself (LOGOUT / QUIT). */
export const QUIT: ClientStep = { kind: "close", quit: true };

export function send(data: Uint8Array): ClientStep {
  return { kind: "send", data };
}

export function info(message: string): ClientStep {
  return { kind: "log", level: "info", message };
}

/** Which SASL answer a machine waits for after a challenge. */
export type SaslWait = "plain" | "login-user" | "login-pass" | "cram-md5" | "external";
