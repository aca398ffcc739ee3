// Small builders for the steps pre-auth machines return (machine.ts).

import type { ClientStep } from "./machine.ts";

export const CLOSE: ClientStep = { kind: "close" };
/** The client ended the session itself (LOGOUT / QUIT). */
export const QUIT: ClientStep = { kind: "close", reason: "quit" };
/** The auth service refused and sent no Auth-Wait. */
const REFUSED_CLOSE: ClientStep = { kind: "close", reason: "refused" };

export function send(data: Uint8Array): ClientStep {
  return { kind: "send", data };
}

export function info(message: string): ClientStep {
  return { kind: "log", level: "info", message };
}

/** The final refusal line, then the close when there was no Auth-Wait. */
export function refusal(line: Uint8Array, close: boolean): ClientStep[] {
  return close ? [send(line), REFUSED_CLOSE] : [send(line)];
}
