// server_name matching for SNI (several server blocks on one TLS listener),
// with nginx's http precedence: an exact name, then the longest leading
// wildcard (`*.example.org`, `.example.org`), then the longest trailing
// wildcard (`mail.*`); anything else gets the default block (the first).
// Regular-expression names (`~...`) are not supported. Runtime-neutral: the
// proxy gives the choice to the session, which reads the ClientHello itself.

/** One block's names, lower-cased, as written in server_name. */
export type NamePatterns = readonly string[];

const lower = (s: string) => s.toLowerCase();

/**
 * How well `pattern` matches `name` (both lower-case): Infinity for an
 * exact match, else a rank that orders leading wildcards (1e6 + suffix
 * length) above trailing ones (prefix length); -1 for no match.
 */
export function nameMatchRank(pattern: string, name: string): number {
  if (pattern === name) return Infinity;
  if (pattern.startsWith("*.")) {
    const suffix = pattern.slice(1); // ".example.org"
    return name.endsWith(suffix) && name.length > suffix.length ? 1e6 + suffix.length : -1;
  }
  if (pattern.startsWith(".")) {
    // nginx: ".example.org" is "example.org" and "*.example.org".
    if (name === pattern.slice(1)) return Infinity;
    return name.endsWith(pattern) ? 1e6 + pattern.length : -1;
  }
  if (pattern.endsWith(".*")) {
    const prefix = pattern.slice(0, -1); // "mail."
    return name.startsWith(prefix) && name.length > prefix.length ? prefix.length : -1;
  }
  return -1;
}

/**
 * Index of the block the name selects among `blocks` (each its names), or 0
 * (the default) for an unknown or missing name. On a tie the earlier block
 * wins (a later one with the same name was reported as conflicting).
 */
export function selectServerByName(blocks: readonly NamePatterns[], name: string | null): number {
  if (name === null || name === "") return 0;
  const n = lower(name.endsWith(".") ? name.slice(0, -1) : name);
  let best = 0;
  let bestRank = -1;
  blocks.forEach((patterns, i) => {
    for (const p of patterns) {
      const r = nameMatchRank(lower(p), n);
      if (r > bestRank) {
        best = i;
        bestRank = r;
      }
    }
  });
  return best;
}

/** Whether a server_name value is a form this matcher knows (for the config check). */
export function validServerName(p: string): boolean {
  if (p === "" || p.startsWith("~")) return false;
  const inner = p.startsWith("*.")
    ? p.slice(2)
    : p.startsWith(".")
    ? p.slice(1)
    : p.endsWith(".*")
    ? p.slice(0, -2)
    : p;
  return inner !== "" && !inner.includes("*");
}
