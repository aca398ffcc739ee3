// Directive names nginx knows from its http and stream modules (the common
// ones; nginx 1.22–1.27). nginx looks a name up in every loaded module
// before it looks at the context, so `proxy_pass` inside `mail {}` gets
// `"proxy_pass" directive is not allowed here`, not "unknown directive";
// mailgate answers the same for these names in every context it reads
// (http and stream blocks themselves are skipped whole, load.ts).

// deno-fmt-ignore
const HTTP_CORE = [
  "absolute_redirect", "aio", "alias", "chunked_transfer_encoding", "client_body_buffer_size",
  "client_body_in_file_only", "client_body_temp_path", "client_body_timeout", "client_header_buffer_size",
  "client_header_timeout", "client_max_body_size", "default_type", "directio", "error_page", "etag",
  "if_modified_since", "ignore_invalid_headers", "internal", "keepalive_requests", "keepalive_timeout",
  "large_client_header_buffers", "limit_except", "limit_rate", "lingering_close", "lingering_time",
  "lingering_timeout", "location", "log_not_found", "log_subrequest", "merge_slashes", "open_file_cache",
  "open_file_cache_errors", "open_file_cache_min_uses", "open_file_cache_valid", "output_buffers",
  "port_in_redirect", "postpone_output", "recursive_error_pages", "reset_timedout_connection", "root",
  "satisfy", "send_timeout", "sendfile", "sendfile_max_chunk", "server_name_in_redirect",
  "server_names_hash_bucket_size", "server_names_hash_max_size", "server_tokens", "subrequest_output_buffer_size",
  "tcp_nodelay", "tcp_nopush", "try_files", "types", "types_hash_bucket_size", "types_hash_max_size",
  "underscores_in_headers", "variables_hash_bucket_size", "variables_hash_max_size",
];

// deno-fmt-ignore
const HTTP_MODULES = [
  // access, auth, index, autoindex, headers, rewrite, log, map, geo, limits, gzip, realip, charset.
  "allow", "deny", "auth_basic", "auth_basic_user_file", "auth_request", "auth_request_set", "index",
  "autoindex", "add_header", "add_trailer", "expires", "break", "if", "return", "rewrite", "rewrite_log", "set",
  "uninitialized_variable_warn", "log_format", "open_log_file_cache", "map", "map_hash_bucket_size",
  "map_hash_max_size", "geo", "split_clients", "limit_conn", "limit_conn_zone", "limit_conn_status",
  "limit_req", "limit_req_zone", "limit_req_status", "gzip", "gzip_buffers", "gzip_comp_level",
  "gzip_disable", "gzip_http_version", "gzip_min_length", "gzip_proxied", "gzip_types", "gzip_vary",
  "gzip_static", "real_ip_header", "real_ip_recursive", "charset", "source_charset", "sub_filter",
  "ssi", "stub_status", "http2", "ssl_stapling", "ssl_stapling_verify", "ssl_stapling_file",
  "ssl_stapling_responder", "ssl_buffer_size", "ssl_early_data", "ssl_ocsp", "ssl_ocsp_cache",
  "ssl_ocsp_responder", "ssl_reject_handshake", "fastcgi_pass", "fastcgi_param", "fastcgi_index",
  "uwsgi_pass", "uwsgi_param", "scgi_pass", "scgi_param", "grpc_pass",
  // upstream.
  "upstream", "zone", "keepalive", "keepalive_timeout", "least_conn", "ip_hash", "hash", "random",
];

// deno-fmt-ignore
const PROXY = [
  "proxy_bind", "proxy_buffer_size", "proxy_buffering", "proxy_buffers", "proxy_busy_buffers_size",
  "proxy_cache", "proxy_cache_bypass", "proxy_cache_key", "proxy_cache_lock", "proxy_cache_methods",
  "proxy_cache_path", "proxy_cache_use_stale", "proxy_cache_valid", "proxy_connect_timeout",
  "proxy_cookie_domain", "proxy_cookie_path", "proxy_hide_header", "proxy_http_version",
  "proxy_ignore_headers", "proxy_intercept_errors", "proxy_max_temp_file_size", "proxy_method",
  "proxy_next_upstream", "proxy_next_upstream_timeout", "proxy_next_upstream_tries", "proxy_no_cache",
  "proxy_pass", "proxy_pass_header", "proxy_pass_request_body", "proxy_pass_request_headers",
  "proxy_read_timeout", "proxy_redirect", "proxy_request_buffering", "proxy_send_timeout", "proxy_set_body",
  "proxy_set_header", "proxy_socket_keepalive", "proxy_ssl_ciphers", "proxy_ssl_conf_command",
  "proxy_ssl_crl", "proxy_ssl_password_file", "proxy_ssl_protocols", "proxy_ssl_session_reuse",
  "proxy_ssl_verify_depth", "proxy_store", "proxy_temp_path",
  // stream proxy and friends.
  "proxy_download_rate", "proxy_half_close", "proxy_requests", "proxy_responses", "proxy_upload_rate",
  "preread_buffer_size", "preread_timeout", "proxy_protocol_timeout", "ssl_preread", "pass",
];

/** Names nginx knows outside `mail {}` and mailgate does not. */
export const FOREIGN_DIRECTIVES: ReadonlySet<string> = new Set([
  ...HTTP_CORE,
  ...HTTP_MODULES,
  ...PROXY,
]);

export function notAllowedHere(name: string): string {
  return `"${name}" directive is not allowed here`;
}
