// Value parsers for directive arguments (directives.md §1.3), following
// nginx's ngx_atoi / ngx_parse_size / ngx_parse_time. Each returns null for
// an invalid value; callers turn that into the directive's own message.

/** Largest value any parser returns (nginx uses ngx_int_t; we stay exact). */
const MAX = Number.MAX_SAFE_INTEGER;

/** Decimal digits only, no sign (ngx_atoi). */
export function parseNumber(s: string): number | null {
  if (s.length === 0) return null;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
    v = v * 10 + (c - 0x30);
    if (v > MAX) return null;
  }
  return v;
}

function scaled(s: string, units: Record<string, number>): number | null {
  if (s.length === 0) return null;
  const scale = units[s[s.length - 1]];
  const n = parseNumber(scale === undefined ? s : s.slice(0, -1));
  if (n === null) return null;
  const v = n * (scale ?? 1);
  return v > MAX ? null : v;
}

const SIZE_UNITS: Record<string, number> = { k: 1024, K: 1024, m: 1048576, M: 1048576 };
const OFFSET_UNITS: Record<string, number> = { ...SIZE_UNITS, g: 1073741824, G: 1073741824 };

/** `128`, `10k`, `1m` (ngx_parse_size). */
export function parseSize(s: string): number | null {
  return scaled(s, SIZE_UNITS);
}

/** Like parseSize plus `g` (ngx_parse_offset; worker_rlimit_core). */
export function parseOffset(s: string): number | null {
  return scaled(s, OFFSET_UNITS);
}

// Steps of ngx_parse_time; units must appear in strictly increasing step order.
const ST_START = 0, ST_YEAR = 1, ST_MONTH = 2, ST_WEEK = 3, ST_DAY = 4, ST_HOUR = 5;
const ST_MIN = 6, ST_SEC = 7, ST_MSEC = 8, ST_LAST = 9;

/**
 * Time in milliseconds (`isSec` false: units w d h m s ms, bare number =
 * seconds) or in seconds (`isSec` true: also y and M, no ms).
 */
export function parseTime(s: string, isSec: boolean): number | null {
  let valid = false;
  let value = 0;
  let total = 0;
  let step = isSec ? ST_START : ST_MONTH;
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      value = value * 10 + (c - 0x30);
      if (value > MAX) return null;
      valid = true;
      i++;
      continue;
    }
    const u = s[i++];
    let scale: number;
    let isMs = false;
    switch (u) {
      case "y":
        if (step > ST_START) return null;
        step = ST_YEAR;
        scale = 365 * 86400;
        break;
      case "M":
        if (step >= ST_MONTH) return null;
        step = ST_MONTH;
        scale = 30 * 86400;
        break;
      case "w":
        if (step >= ST_WEEK) return null;
        step = ST_WEEK;
        scale = 7 * 86400;
        break;
      case "d":
        if (step >= ST_DAY) return null;
        step = ST_DAY;
        scale = 86400;
        break;
      case "h":
        if (step >= ST_HOUR) return null;
        step = ST_HOUR;
        scale = 3600;
        break;
      case "m":
        if (s[i] === "s") {
          if (isSec || step >= ST_MSEC) return null;
          i++;
          step = ST_MSEC;
          scale = 1;
          isMs = true;
          break;
        }
        if (step >= ST_MIN) return null;
        step = ST_MIN;
        scale = 60;
        break;
      case "s":
        if (step >= ST_SEC) return null;
        step = ST_SEC;
        scale = 1;
        break;
      case " ":
        // A bare number followed by a space: seconds, and nothing may follow.
        if (step >= ST_SEC) return null;
        step = ST_LAST;
        scale = 1;
        break;
      default:
        return null;
    }
    if (!isMs && !isSec) scale *= 1000;
    const part = value * scale;
    if (part > MAX || total + part > MAX) return null;
    total += part;
    value = 0;
    while (s[i] === " ") i++;
  }
  if (!valid) return null;
  const rest = isSec ? value : value * 1000;
  if (total + rest > MAX) return null;
  return total + rest;
}

/** Time in milliseconds. */
export function parseMsec(s: string): number | null {
  return parseTime(s, false);
}

/** Time in seconds. */
export function parseSec(s: string): number | null {
  return parseTime(s, true);
}

/** `on` / `off`, any case. */
export function parseFlag(s: string): boolean | null {
  const l = s.toLowerCase();
  return l === "on" ? true : l === "off" ? false : null;
}
