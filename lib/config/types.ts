// The typed configuration that the rest of mailgate reads. Produced by
// load.ts from the directive tree; every value here is already validated,
// defaulted and inherited (mail -> server), and every path is absolute.

/** Where a directive (or block) was written, for error messages. */
import type { StatusAddress } from "./status_listen.ts";
import type { SharedStoreConfig } from "./shared_store.ts";
import type { LimitConnConfig } from "./limit_conn_directives.ts";
export interface Loc {
  file: string;
  line: number;
}

/** nginx's error log levels, most severe first (the one definition: config and log layer). */
export const LOG_LEVELS = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"] as const;
export type LogLevel = typeof LOG_LEVELS[number];

export interface LogTarget {
  /** Absolute file path, "stderr", or the raw "syslog:..." / "memory:..." spec. */
  target: string;
  level: LogLevel;
  loc: Loc;
}

export interface ConfigWarning {
  message: string;
  loc: Loc | null;
}

/** Everything outside and including the mail block. */
export interface Config {
  /** Absolute path of the main configuration file. */
  file: string;
  /** Absolute prefix directory (-p), for pid/error_log relative paths. */
  prefix: string;
  workerProcesses: number | "auto";
  daemon: boolean;
  /** Absolute pid file path, or null when not configured. */
  pid: string | null;
  /** Main-level error logs (default: prefix-relative logs/error.log at error is nginx's; ours: stderr error). */
  errorLogs: LogTarget[];
  workerConnections: number; // events { worker_connections }, default 512
  workerShutdownTimeout: number | null; // ms; null = wait indefinitely
  mail: MailConfig | null;
  /** Warnings collected while loading ([warn] lines to print at start-up). */
  warnings: ConfigWarning[];
  /** Every directive seen, in file order, with its arguments (start-up warnings use them). */
  seen: { name: string; args: string[]; loc: Loc }[];
  /** Every file read, in read order, with its text (for -T). */
  files: { path: string; text: string }[];
}

export interface MailConfig {
  loc: Loc;
  servers: ServerConfig[];
  /** status_listen addresses (mailgate extension); empty = none. */
  statusListen: StatusAddress[];
  /** shared_store and its settings (config/shared_store.ts); null = state per process. */
  sharedStore: SharedStoreConfig | null;
}

export type Protocol = "imap" | "pop3" | "smtp";
type OauthMethod = "xoauth2" | "oauthbearer";
export type ImapAuthMethod = "plain" | "login" | "cram-md5" | "external" | OauthMethod;
export type Pop3AuthMethod = "plain" | "apop" | "cram-md5" | "external" | OauthMethod;
export type SmtpAuthMethod = "plain" | "login" | "cram-md5" | "external" | OauthMethod | "none";

export type ListenAddress =
  /** host: IP literal without brackets, "*" resolved to "0.0.0.0"; "::" for [::]. */
  | { kind: "tcp"; host: string; port: number; wildcard: boolean }
  | { kind: "unix"; path: string };

export interface ListenConfig {
  loc: Loc;
  address: ListenAddress;
  ssl: boolean;
  proxyProtocol: boolean;
  bind: boolean;
  backlog: number | null;
  rcvbuf: number | null;
  sndbuf: number | null;
  ipv6only: boolean | null;
  multipath: boolean;
  /** null = not given; false = off; true = on with system defaults; object = idle:intvl:cnt (seconds / count). */
  soKeepalive: null | boolean | { idle: number | null; intvl: number | null; cnt: number | null };
}

export interface AuthHttpUrl {
  /** The URL as written (for logs: `auth http server <addr>`). */
  raw: string;
  target: { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };
  /** Host header value (host part without port; "localhost" for unix:). */
  hostHeader: string;
  /** Request URI, default "/". */
  uri: string;
  /** `https://` (mailgate extension): TLS to the auth service, auth_http_ssl_* settings. */
  tls?: boolean;
  /**
   * The host name as written when it is not an IP literal (null/absent: a
   * literal or unix:). With a `resolver` it is looked up per connection and
   * target.host is ""; without one it was looked up at load (as nginx does).
   * Also the name sent as SNI and verified in the certificate.
   */
  name?: string | null;
  /** Where auth_http was written (for errors found after the merge). */
  loc?: Loc;
}

/** auth_http_ssl_* (mailgate extension): TLS towards an `https://` auth_http. */
export interface AuthHttpSslConfig {
  verify: boolean; // default on
  trustedCertificate: string | null;
  certificate: string | null;
  certificateKey: string | null;
  /** The files above, read at load when auth_http is https. */
  pem?: BackendPem;
}

export interface ResolverConfig {
  servers: { host: string; port: number }[];
  validMs: number | null;
  ipv4: boolean;
  ipv6: boolean;
  loc: Loc;
}

export type SessionCache =
  | { kind: "off" }
  | { kind: "none" }
  | { kind: "builtin"; size: number; shared: { name: string; size: number } | null }
  | { kind: "shared"; name: string; size: number };

export interface SslConfig {
  /** Pairs, in order; key paths align with certificate paths. "data:" values kept as given. */
  certificates: string[];
  certificateKeys: string[];
  certificateLoc: Loc | null;
  passwordFile: string | null;
  protocols: string[]; // default ["TLSv1.2", "TLSv1.3"]
  ciphers: string; // default "HIGH:!aNULL:!MD5"
  preferServerCiphers: boolean;
  ecdhCurve: string; // default "auto"
  dhparam: string | null;
  confCommands: [string, string][];
  certificateCompression: boolean;
  sessionCache: SessionCache; // default none
  sessionTickets: boolean; // default on
  sessionTicketKeys: string[];
  sessionTimeoutSec: number; // default 300
  verifyClient: "off" | "on" | "optional" | "optional_no_ca";
  verifyDepth: number; // default 1
  clientCertificate: string | null;
  trustedCertificate: string | null;
  crl: string | null;
  /** The files above, read and checked once at load; set for servers that use TLS. */
  pem?: ServerPem;
}

/**
 * A TLS server's PEM material, each value only the blocks its consumer
 * takes from a file that may hold several (lib/tls/pem.ts).
 */
export interface ServerPem {
  /** Per ssl_certificate: its chain (CERTIFICATE blocks) and its key, unencrypted PKCS#8. */
  certs: { cert: string; key: string }[];
  /** CERTIFICATE blocks of ssl_client_certificate / ssl_trusted_certificate (verify on only). */
  ca?: string;
  trustedCa?: string;
  /** X509 CRL blocks of ssl_crl (verify on only). */
  crl?: string;
  /** The DH PARAMETERS block of ssl_dhparam. */
  dhparam?: string;
}

/** Backend TLS PEM material (proxy_ssl_*), read once at load when backend TLS is on. */
export interface BackendPem {
  ca?: string;
  cert?: string;
  key?: string;
}

/** mailgate's TLS-to-backend extension (off by default). */
export interface ProxySslConfig {
  /** Implicit TLS to the backend from byte 0. */
  ssl: boolean;
  /** STARTTLS/STLS to the backend before logging in. */
  starttls: boolean;
  verify: boolean;
  trustedCertificate: string | null;
  /** Name to verify and send as SNI; null = the Auth-Server value. */
  name: string | null;
  serverName: boolean; // send SNI (proxy_ssl_server_name), default off
  certificate: string | null;
  certificateKey: string | null;
  /** The files above, read at load when backend TLS is on. */
  pem?: BackendPem;
}

export interface ServerConfig {
  /** Line of `server {`. */
  loc: Loc;
  protocol: Protocol;
  listens: ListenConfig[];
  /** The first server_name: greetings, SASL. */
  serverName: string;
  /** Every server_name, lower-cased ([] when none is set): SNI selection. */
  serverNames: string[];
  timeoutMs: number; // default 60000
  resolver: ResolverConfig | null; // null = off
  resolverTimeoutMs: number; // default 30000
  maxErrors: number; // default 5
  /** freenginx max_commands: commands allowed before authentication (default 1000). */
  maxCommands: number;
  /** Auth cache and failed-login limits (README "Protection"). */
  protect: ProtectConfig;
  /** freenginx limit_conn (lib/protect/limit_conn.ts); null or absent = none. */
  limitConn?: LimitConnConfig | null;
  /** Server-level (or mail-level) error logs; null = use the main-level ones. */
  errorLogs: LogTarget[] | null;

  authHttp: AuthHttpUrl | null;
  authHttpHeaders: [string, string][];
  authHttpPassClientCert: boolean;
  authHttpTimeoutMs: number; // default 60000
  /** mailgate extension auth_http_keepalive: idle auth_http connections kept (0: none, as nginx). */
  authHttpKeepalive: number;
  /** mailgate extension auth_http_ssl_*: TLS settings for an https:// auth_http. */
  authHttpSsl: AuthHttpSslConfig;
  /** mailgate extension: built-in auth table file (absolute path), or null. */
  authTable: string | null;

  proxyBuffer: number; // default 4096
  proxyPassErrorMessage: boolean;
  proxyProtocol: "off" | "v1" | "v2";
  proxySmtpAuth: boolean;
  proxyTimeoutMs: number; // default 24h
  xclient: boolean; // default on
  /** mailgate extension: IMAP ID with the client's address to the backend before LOGIN (default off). */
  proxyImapId: boolean;
  /** mailgate extension: POP3 XCLIENT with the client's address to the backend before USER (default off). */
  proxyPop3Xclient: boolean;
  /**
   * mailgate extension: log in to the backend with the client's XOAUTH2 /
   * OAUTHBEARER token instead of Auth-Pass (default off).
   */
  proxyOauthPassthrough: boolean;
  proxySsl: ProxySslConfig;

  imapAuth: ImapAuthMethod[]; // default ["plain"], duplicates removed, order as merged
  imapCapabilities: string[]; // default ["IMAP4", "IMAP4rev1", "UIDPLUS"]
  /** mailgate extension imap_id: the fields of the `* ID` answer (default none: NIL). */
  imapId: [string, string][];
  imapClientBuffer: number; // default 4096
  pop3Auth: Pop3AuthMethod[]; // default ["plain"]
  pop3Capabilities: string[]; // default ["TOP", "USER", "UIDL"]
  smtpAuth: SmtpAuthMethod[]; // default ["plain", "login"]
  smtpCapabilities: string[]; // default []
  smtpClientBuffer: number; // default 4096
  smtpGreetingDelayMs: number; // default 0

  starttls: "off" | "on" | "only";
  starttlsLoc: Loc | null;
  ssl: SslConfig;
  /**
   * mailgate extension (nginx PR #1590): the POP3 pre-auth line bound,
   * default 4096 (nginx's is fixed at 128 bytes, too small for a token).
   * Optional: hand-built configurations in tests keep nginx's 128.
   */
  pop3ClientBuffer?: number;
  /** Parsed CIDRs; "unix:" entry is { kind: "unix" }. */
  setRealIpFrom: ({ kind: "cidr"; family: 4 | 6; bytes: Uint8Array; prefix: number } | { kind: "unix" })[];
  /** mailgate extension (issue 5): access log file, or null. */
  accessLog: string | null;
}

/** auth_fail_limit_ip / auth_fail_limit_user: N failures within a window. */
export interface FailLimit {
  count: number;
  windowMs: number;
}

/** mailgate's auth cache and failed-login limits (README "Protection"). */
export interface ProtectConfig {
  cacheTtlMs: number; // auth_cache_ttl, default 0 (off)
  cacheNegativeTtlMs: number; // auth_cache_negative_ttl, default 0 (off)
  cacheSize: number; // auth_cache_size, default 10000 entries
  cacheSecretFile: string | null; // auth_cache_secret (absolute path)
  failLimitIp: FailLimit | null;
  failLimitUser: FailLimit | null;
}
