// `shared_store redis://[user:password@]host:port[/db]`: parsed once at
// configuration time. The password never leaves this object except towards
// Redis (AUTH); `display` is what logs and notices show.

export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  user: string | null;
  password: string | null;
  /** The URL had `name@` with no colon (read as a password, or as the user beside a password file). */
  bareCredential: boolean;
  /** `redis://host:port`, never with the credentials. */
  display: string;
}

const DEFAULT_PORT = 6379;
/** Redis's default `databases` is 16; a server may have more, so only the type is checked. */
const MAX_DB = 1_000_000;

/** The target, or an error message (without the password) for the configuration error. */
export function parseRedisUrl(text: string): RedisTarget | string {
  const m = /^redis:\/\/(?:([^@/]*)@)?(\[[0-9a-fA-F:.]+\]|[^:/@\[\]]+)(?::(\d{1,5}))?(?:\/(\d*))?$/
    .exec(text);
  if (m === null) {
    return `invalid shared store URL "${
      redacted(text)
    }": expected redis://[user:password@]host:port[/db]`;
  }
  const [, cred, hostPart, portText, dbText] = m;
  const port = portText === undefined ? DEFAULT_PORT : Number(portText);
  if (port < 1 || port > 65535) return `invalid port in shared store URL "${redacted(text)}"`;
  const db = dbText === undefined || dbText === "" ? 0 : Number(dbText);
  if (db > MAX_DB) return `invalid database number in shared store URL "${redacted(text)}"`;
  let user: string | null = null;
  let password: string | null = null;
  if (cred !== undefined) {
    const colon = cred.indexOf(":");
    try {
      if (colon < 0) {
        // redis://secret@host, as redis-cli -u reads it: a password alone.
        password = decodeURIComponent(cred);
      } else {
        user = decodeURIComponent(cred.slice(0, colon)) || null;
        password = decodeURIComponent(cred.slice(colon + 1));
      }
    } catch {
      return `invalid percent-encoding in shared store URL "${redacted(text)}"`;
    }
    if (password === "") password = null;
  }
  const host = hostPart.startsWith("[") ? hostPart.slice(1, -1) : hostPart;
  return {
    host,
    port,
    db,
    user,
    password,
    bareCredential: cred !== undefined && !cred.includes(":"),
    display: `redis://${hostPart}:${port}`,
  };
}

/** The URL with any credentials replaced, for error messages. */
export function redacted(text: string): string {
  return text.replace(/^(redis:\/\/)[^@/]*@/, "$1***@");
}
