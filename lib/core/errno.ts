// System error numbers as nginx prints them: `(111: Connection refused)`.
// Errors come as node:net/Bun objects (`code`), Deno errors (`name`, and
// "(os error N)" in the message), or anything else.

/** errno number and strerror text (Linux) by code, for nginx-style `(111: Connection refused)`. */
export const ERRNO: Record<string, [number, string]> = {
  EPERM: [1, "Operation not permitted"],
  ENOENT: [2, "No such file or directory"],
  EISDIR: [21, "Is a directory"],
  EROFS: [30, "Read-only file system"],
  EACCES: [13, "Permission denied"],
  EPIPE: [32, "Broken pipe"],
  EADDRINUSE: [98, "Address already in use"],
  EADDRNOTAVAIL: [99, "Cannot assign requested address"],
  ENETUNREACH: [101, "Network is unreachable"],
  ECONNABORTED: [103, "Software caused connection abort"],
  ECONNRESET: [104, "Connection reset by peer"],
  ENOTCONN: [107, "Transport endpoint is not connected"],
  ETIMEDOUT: [110, "Connection timed out"],
  ECONNREFUSED: [111, "Connection refused"],
  EHOSTUNREACH: [113, "No route to host"],
  ENOTSOCK: [88, "Socket operation on non-socket"],
};

/** Deno's error class names for the same conditions. */
const DENO_NAMES: Record<string, string> = {
  ConnectionRefused: "ECONNREFUSED",
  ConnectionReset: "ECONNRESET",
  ConnectionAborted: "ECONNABORTED",
  TimedOut: "ETIMEDOUT",
  NotFound: "ENOENT",
  PermissionDenied: "EACCES",
  AddrNotAvailable: "EADDRNOTAVAIL",
  AddrInUse: "EADDRINUSE",
  BrokenPipe: "EPIPE",
  NotConnected: "ENOTCONN",
};

/**
 * A socket error as nginx prints it: `111: Connection refused`. Works with
 * node:net (`code`), Bun (`code`) and Deno (`name`, "(os error N)") errors;
 * anything else gives its message on one line.
 */
export function describeSocketError(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; message?: unknown; errno?: unknown } | null;
  let code = typeof e?.code === "string" ? e.code : undefined;
  if (code === undefined && typeof e?.name === "string") code = DENO_NAMES[e.name];
  if (code !== undefined && ERRNO[code] !== undefined) {
    const [n, text] = ERRNO[code];
    return `${n}: ${text}`;
  }
  const message = typeof e?.message === "string" ? e.message : String(err);
  const os = /\(os error (\d+)\)/.exec(message);
  if (os !== null) {
    const n = Number(os[1]);
    for (const [num, text] of Object.values(ERRNO)) if (num === n) return `${n}: ${text}`;
  }
  return message.replace(/[\r\n]+/g, " ");
}
