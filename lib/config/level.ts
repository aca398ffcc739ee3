// Settings written at one level (the mail block or one server block) before
// inheritance. Keys are the directive names, so a directive handler and the
// merge step name the same slot. Single-valued slots refuse a second value
// ("is duplicate"); list slots append.

import type { StatusAddress } from "./status_listen.ts";
import { ConfigError } from "./errors.ts";
import type { Cidr } from "../core/ip.ts";
import type { RedisTarget } from "../store/redis_url.ts";
import type { LimitConnLogLevel, LimitConnRule, LimitConnZone } from "./limit_conn_directives.ts";
import type {
  AuthHttpUrl,
  FailLimit,
  ListenConfig,
  Loc,
  LogTarget,
  Protocol,
  ResolverConfig,
  SessionCache,
} from "./types.ts";

export interface Singles {
  server_name: string;
  timeout: number;
  resolver: ResolverConfig | null;
  resolver_timeout: number;
  max_errors: number;
  max_commands: number;
  auth_cache_ttl: number;
  auth_cache_negative_ttl: number;
  auth_cache_size: number;
  auth_cache_secret: string;
  auth_fail_limit_ip: FailLimit;
  auth_fail_limit_user: FailLimit;
  limit_conn_dry_run: boolean;
  limit_conn_log_level: LimitConnLogLevel;
  auth_http: AuthHttpUrl;
  auth_http_pass_client_cert: boolean;
  auth_http_timeout: number;
  auth_http_keepalive: number;
  auth_http_ssl_verify: boolean;
  auth_http_ssl_trusted_certificate: string;
  auth_http_ssl_certificate: string;
  auth_http_ssl_certificate_key: string;
  auth_table: string;
  access_log: string | null;
  proxy: boolean;
  proxy_buffer: number;
  proxy_pass_error_message: boolean;
  proxy_protocol: "off" | "v1" | "v2";
  proxy_smtp_auth: boolean;
  proxy_timeout: number;
  xclient: boolean;
  proxy_imap_id: boolean;
  proxy_pop3_xclient: boolean;
  proxy_oauth_passthrough: boolean;
  proxy_ssl: boolean;
  proxy_starttls: boolean;
  proxy_ssl_verify: boolean;
  proxy_ssl_trusted_certificate: string;
  proxy_ssl_name: string;
  proxy_ssl_server_name: boolean;
  pop3_client_buffer: number;
  proxy_ssl_certificate: string;
  proxy_ssl_certificate_key: string;
  imap_client_buffer: number;
  smtp_client_buffer: number;
  smtp_greeting_delay: number;
  starttls: "off" | "on" | "only";
  ssl: boolean;
  ssl_password_file: string;
  ssl_ciphers: string;
  ssl_prefer_server_ciphers: boolean;
  ssl_ecdh_curve: string;
  ssl_dhparam: string;
  ssl_certificate_compression: boolean;
  ssl_session_cache: SessionCache;
  ssl_session_tickets: boolean;
  ssl_session_timeout: number;
  ssl_verify_client: "off" | "on" | "optional" | "optional_no_ca";
  ssl_verify_depth: number;
  ssl_client_certificate: string;
  ssl_trusted_certificate: string;
  ssl_crl: string;
  shared_store: RedisTarget;
  shared_store_password_file: string;
  shared_store_timeout: number;
}

export type RealIpFrom = Cidr | { kind: "unix" };

export interface Lists {
  error_log: LogTarget[];
  auth_http_header: [string, string][];
  limit_conn_zone: LimitConnZone[];
  limit_conn: LimitConnRule[];
  imap_capabilities: string[];
  imap_id: [string, string][];
  pop3_capabilities: string[];
  smtp_capabilities: string[];
  imap_auth: string[];
  pop3_auth: string[];
  smtp_auth: string[];
  ssl_protocols: string[];
  ssl_certificate: string[];
  ssl_certificate_key: string[];
  ssl_conf_command: [string, string][];
  ssl_session_ticket_key: string[];
  set_real_ip_from: RealIpFrom[];
  status_listen: StatusAddress[];
}

export interface Slot<T> {
  value: T;
  loc: Loc;
}

/** Directives whose repetition at one level silently keeps the last value. */
const REPLACEABLE = new Set<keyof Singles>(["auth_http", "ssl_session_cache"]);

export class Level {
  readonly singles: { [K in keyof Singles]?: Slot<Singles[K]> } = {};
  readonly lists: { [K in keyof Lists]?: Slot<Lists[K]> } = {};
  /** Pass phrases read from this level's ssl_password_file. */
  passwords: string[] | null = null;
  /** nginx's ssl conf file/line: last `listen ... ssl`, else `starttls` (mail level: starttls). */
  sslModeLoc: Loc | null = null;
  hasListenSsl = false;

  constructor(readonly loc: Loc) {}

  has(k: keyof Singles): boolean {
    return this.singles[k] !== undefined;
  }

  set<K extends keyof Singles>(k: K, value: Singles[K], loc: Loc): void {
    this.checkDuplicate(k, loc);
    (this.singles as Record<string, Slot<unknown>>)[k] = { value, loc };
  }

  /** nginx checks for a duplicate before it looks at the value. */
  checkDuplicate(k: keyof Singles, loc: Loc): void {
    if (this.singles[k] !== undefined && !REPLACEABLE.has(k)) {
      throw new ConfigError(`"${k}" directive is duplicate`, loc);
    }
  }

  /** Duplicate check, then parse, then store. */
  setWith<K extends keyof Singles>(k: K, loc: Loc, parse: () => Singles[K]): void {
    this.checkDuplicate(k, loc);
    this.set(k, parse(), loc);
  }

  append<K extends keyof Lists>(k: K, items: Lists[K], loc: Loc): void {
    const cur = this.lists[k];
    if (cur) {
      (cur.value as unknown[]).push(...(items as unknown[]));
    } else {
      (this.lists as Record<string, Slot<unknown>>)[k] = { value: [...items], loc };
    }
  }
}

export class ServerLevel extends Level {
  protocol: Protocol | null = null;
  /** Protocol implied by the first well-known listen port. */
  detectedProtocol: Protocol | null = null;
  readonly listens: ListenConfig[] = [];
}
