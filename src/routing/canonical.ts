// Canonical request paths: the one form of a request target that the gate both authorizes and
// forwards, so the route it decides on is the route GitLab will run (docs/gitlab-rules.md,
// "Paths as Rails and Grape read them").
//
// What GitLab's stack does, and what this module does about it:
// - Grape collapses `//` and ignores a trailing `/`           -> we collapse and drop them.
// - Grape does not resolve `.`/`..`; Workhorse cleans them only to pick its own route and
//   forwards the original                                       -> we reject dot segments, raw or
//   encoded, and also `..`/`.` between encoded slashes inside one segment (`a%2F..%2Fb`), because
//   a `[^/]+` parameter is decoded after matching and would then carry a traversal.
// - Mustermann lets a literal route character match its `%XX` form (`%2D` for `-`) -> we decode
//   escapes of unreserved characters and of `@` (the only other literal in GitLab's routes).
//   Every other escape (`%2F`, `%25`, `%20`, `%C3%A9`, ...) is kept exactly as sent, hex case
//   included, so parameters are decoded exactly once, later, by decodeParam.
// - The `(.:format)` suffix (`/packages/5.json`) is NOT stripped here: whether `.json` is a
//   format or part of a parameter depends on the route, so the router decides.
// - HEAD is routed and authorized as GET.
//
// The returned `path` is what gets forwarded byte for byte: re-canonicalizing it yields itself.

import type { ErrorCode } from '../errors.ts'

export interface CanonicalOptions {
  /** GitLab's relative URL root, e.g. '/gitlab'; '' (the default) for none. */
  relativeUrlRoot?: string
  /** Longest accepted path (the part before '?'), in characters. Default 8192. */
  maxPathLength?: number
  /** Longest accepted raw path segment, in characters. Default 4096. */
  maxSegmentLength?: number
}

export type CanonicalRequest =
  | { kind: 'api', method: string, path: string, apiPath: string, query: string }
  | { kind: 'other', method: string, path: string, query: string }
  | { kind: 'rejected', code: ErrorCode, reason: string }

const DEFAULT_MAX_PATH = 8192
const DEFAULT_MAX_SEGMENT = 4096
/** Where the API's paths begin, after the relative URL root. */
export const API_PREFIX = '/api/v4'

const API_SEGMENTS = /\/api\/v4(?:\/|$)/

/**
 * Whether a path holds the `/api/v4` segments anywhere: GitLab serves its API there under its
 * relative URL root, whether or not the gate was told that root (a path the canonicalizer reads
 * as outside the API may still be GitLab's API).
 */
export function holdsApiSegments (path: string): boolean {
  return API_SEGMENTS.test(path)
}

/**
 * The API path after each `/api/v4` segments of a path (`/` where they end it): what GitLab's API
 * reads if its root is the part before them. Every one is given, as any prefix may be that root.
 */
export function apiPathsIn (path: string): string[] {
  const found: string[] = []
  for (let at = path.indexOf('/api/v4'); at !== -1; at = path.indexOf('/api/v4', at + 1)) {
    const rest = path.slice(at + 7)
    if (rest === '') found.push('/')
    else if (rest.startsWith('/')) found.push(rest)
  }
  return found
}
const API_PREFIX_LEN = API_PREFIX.length
const MAX_ECHO = 64

// ---------------------------------------------------------------------------------------------
// Character classes. The table covers every UTF-16 code unit (charCodeAt never exceeds 0xFFFF)
// so the hot loop indexes it without a range check; everything >= 0x80 stays C_BAD.

const C_BAD = 0 // not allowed raw (PATH_BAD_CHAR)
const C_PLAIN = 1 // RFC 3986 pchar other than '%'
const C_SLASH = 2
const C_PERCENT = 3
const C_QUESTION = 4
const C_CONTROL = 5 // C0 controls and DEL
const C_BACKSLASH = 6

const CLASS = new Uint8Array(0x10000)
const PCHAR = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@"
for (let c = 0; c < 0x20; c++) CLASS[c] = C_CONTROL
CLASS[0x7f] = C_CONTROL
for (let i = 0; i < PCHAR.length; i++) CLASS[PCHAR.charCodeAt(i)] = C_PLAIN
CLASS[0x2f] = C_SLASH
CLASS[0x25] = C_PERCENT
CLASS[0x3f] = C_QUESTION
CLASS[0x5c] = C_BACKSLASH

// The shape of a target that needs no work: non-empty segments of plain pchar characters and
// ASCII escapes that stay encoded (not unreserved, '@', a control or a backslash), no part
// between '/' or '%2F' that is '.' or '..', then a query free of controls, spaces and '#'.
// UTF-8 escapes are left to the scan, which validates them.
const NOT_DOT = String.raw`(?!\.\.?(?:[/?]|%2[Ff]|$))`
const KEPT_ESCAPE = String.raw`%(?:2[0-9A-Ca-c]|3[A-Fa-f]|5[BDEbde]|60|7[B-Db-d])`
// Written so that every character has exactly one way to match (runs of plain characters
// split only at '%' and '/'): linear time, and irregexp consumes whole runs at once.
const PLAIN_RUN = String.raw`[A-Za-z0-9\-._~!$&'()*+,;=:@]*`
const PLAIN_SEGMENT = String.raw`\/(?![/?]|$)${NOT_DOT}${PLAIN_RUN}(?:(?:${KEPT_ESCAPE}|%2[Ff]${NOT_DOT})${PLAIN_RUN})*`
const PLAIN_TARGET = new RegExp(String.raw`^(?:${PLAIN_SEGMENT})+(?:\?[^\x00-\x20\x7f#]*)?$`)

/** Escapes of these bytes are decoded: unreserved characters and '@'. */
const DECODE = new Uint8Array(128)
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~@') DECODE[ch.charCodeAt(0)] = 1

function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1
}

// ---------------------------------------------------------------------------------------------
// Options

interface Resolved {
  readonly root: string
  readonly maxPath: number
  readonly maxSegment: number
}

function positiveInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive integer, got ${String(value).slice(0, MAX_ECHO)}`)
  }
  return value
}

function resolveOptions (options: CanonicalOptions | undefined): Resolved {
  const o = options ?? {}
  const maxPath = positiveInteger('maxPathLength', o.maxPathLength, DEFAULT_MAX_PATH)
  const maxSegment = positiveInteger('maxSegmentLength', o.maxSegmentLength, DEFAULT_MAX_SEGMENT)
  const root = o.relativeUrlRoot ?? ''
  if (typeof root !== 'string') throw new TypeError('relativeUrlRoot must be a string')
  if (root !== '') {
    if (root.charCodeAt(0) !== 0x2f || root.charCodeAt(root.length - 1) === 0x2f) {
      throw new TypeError(`relativeUrlRoot must be '' or start with '/' and not end with '/', got ${show(root)}`)
    }
    // The root is compared with canonical paths, so it must be canonical itself.
    const c = canonicalizeWith('GET', root, { root: '', maxPath: root.length, maxSegment: root.length })
    if (c.kind === 'rejected' || c.path !== root) {
      throw new TypeError(`relativeUrlRoot must be a canonical path (no '//', dot segments, '?' or needless escapes), got ${show(root)}`)
    }
    // A root no request could carry within the limits is a configuration mistake, not a 400.
    if (root.length + API_PREFIX_LEN > maxPath || root.split('/').some(seg => seg.length > maxSegment)) {
      throw new TypeError(`relativeUrlRoot ${show(root)} does not fit within maxPathLength/maxSegmentLength`)
    }
  }
  return { root, maxPath, maxSegment }
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Returns a canonicalizer bound to validated options. Use this on the request path: the options
 * are checked once here (TypeError naming the option when invalid).
 */
export function createCanonicalizer (options?: CanonicalOptions): (method: string, target: string) => CanonicalRequest {
  const resolved = resolveOptions(options)
  return (method, target) => canonicalizeWith(method, target, resolved)
}

const DEFAULTS: Resolved = { root: '', maxPath: DEFAULT_MAX_PATH, maxSegment: DEFAULT_MAX_SEGMENT }

/** Canonicalizes one request. Never throws for any target; throws TypeError for bad options. */
export function canonicalize (method: string, target: string, options?: CanonicalOptions): CanonicalRequest {
  return canonicalizeWith(method, target, options === undefined ? DEFAULTS : resolveOptions(options))
}

/**
 * Decodes a parameter matched on a canonical path exactly once, with decodeURIComponent
 * semantics ('%2F' -> '/', '%252F' -> '%2F'). Every parameter taken from an accepted canonical
 * path decodes without error; it throws (URIError) only for input canonicalize rejects.
 */
export function decodeParam (raw: string): string {
  return raw.indexOf('%') === -1 ? raw : decodeURIComponent(raw)
}

// ---------------------------------------------------------------------------------------------
// Implementation

function routingMethod (method: string): string {
  switch (method) {
    case 'GET': case 'POST': case 'PUT': case 'DELETE': case 'PATCH': case 'OPTIONS':
      return method
    case 'HEAD':
      return 'GET'
  }
  const upper = method.toUpperCase()
  return upper === 'HEAD' ? 'GET' : upper
}

function canonicalizeWith (method: string, target: string, opts: Resolved): CanonicalRequest {
  const len = target.length
  if (len === 0 || target.charCodeAt(0) !== 0x2f) {
    return reject('PATH_NOT_ABSOLUTE', `request target must start with '/', got ${show(target)}`)
  }

  // Hottest path: a target of the PLAIN_TARGET shape is already canonical. One native
  // RegExp test settles it, measured at about a third of the cost of the charCodeAt scan below;
  // the length limits cannot be crossed by a target shorter than both.
  if (len <= opts.maxSegment && len <= opts.maxPath && PLAIN_TARGET.test(target)) {
    const q = target.indexOf('?')
    return q === -1
      ? classify(routingMethod(method), target, '', opts.root)
      : classify(routingMethod(method), target.slice(0, q), target.slice(q + 1), opts.root)
  }

  // Hot path. This runs on every request, in front of a route trie that is benchmarked against
  // raw find-my-way, so the common case is one charCodeAt scan against a lookup table, with no
  // regex and no allocation beyond the returned object and the path/query slices: plain pchar
  // characters, plus escapes that are kept as sent (`%2F` in project ids and file paths, `%25`,
  // UTF-8), which are validated in place. Anything that needs the path rebuilt ('//', a trailing
  // '/', an escape to decode such as `%2D`) or rejected leaves for slowPath(), which rescans from
  // the start, rebuilds the path and words the error; so both paths always agree on the result.
  const maxSegment = opts.maxSegment
  let segStart = 1 // first character of the current segment
  let partStart = 1 // first character of the current part (segment split on '%2F')
  let i = 1
  for (; i < len; i++) {
    const k = CLASS[target.charCodeAt(i)]
    if (k === C_PLAIN) continue
    if (k === C_SLASH) {
      const segLen = i - segStart
      if (segLen === 0 || segLen > maxSegment || isDotPart(target, partStart, i)) break
      segStart = partStart = i + 1
      continue
    }
    if (k === C_PERCENT) {
      const v = escapeAt(target, i, len) // hex digits are never '/' or '?', so len is a safe end
      if (v < 0x20 || v === 0x7f || v === 0x5c) break // invalid escape, control, backslash
      if (v < 0x80) {
        if (DECODE[v] === 1) break // must be decoded: rebuild
        if (v === 0x2f) {
          if (isDotPart(target, partStart, i)) break
          partStart = i + 3
        }
        i += 2
        continue
      }
      const n = utf8Length(target, i, len, v)
      if (n < 0) break
      i += 3 * n - 1
      continue
    }
    if (k === C_QUESTION) {
      if (fastTail(target, i, segStart, partStart, opts)) {
        return classify(routingMethod(method), target.slice(0, i), target.slice(i + 1), opts.root)
      }
      break
    }
    break // control, backslash, or a character not allowed raw
  }
  if (i === len && fastTail(target, len, segStart, partStart, opts)) {
    return classify(routingMethod(method), target, '', opts.root)
  }
  return slowPath(method, target, opts)
}

/** True when target[start, end) is exactly '.' or '..'. */
function isDotPart (t: string, start: number, end: number): boolean {
  const n = end - start
  return n > 0 && n <= 2 && t.charCodeAt(start) === 0x2e && (n === 1 || t.charCodeAt(start + 1) === 0x2e)
}

/**
 * Hot-path checks at the end of the path (pathEnd is the '?' or the end of target): length
 * limits, the last segment (trailing slash, dot segment) and the query's characters.
 */
function fastTail (t: string, pathEnd: number, segStart: number, partStart: number, opts: Resolved): boolean {
  const segLen = pathEnd - segStart
  if (pathEnd > opts.maxPath || segLen > opts.maxSegment || (segLen === 0 && pathEnd > 1) || isDotPart(t, partStart, pathEnd)) {
    return false
  }
  for (let j = pathEnd + 1; j < t.length; j++) {
    const c = t.charCodeAt(j)
    if (c <= 0x20 || c === 0x7f || c === 0x23) return false
  }
  return true
}

/** Splits a canonical path into api/other. */
function classify (method: string, path: string, query: string, root: string): CanonicalRequest {
  const rootLen = root.length
  if (rootLen === 0 || (path.startsWith(root) && (path.length === rootLen || path.charCodeAt(rootLen) === 0x2f))) {
    const end = rootLen + API_PREFIX_LEN
    if (path.startsWith(API_PREFIX, rootLen) && (path.length === end || path.charCodeAt(end) === 0x2f)) {
      return { kind: 'api', method, path, apiPath: path.length === end ? '/' : path.slice(end), query }
    }
  }
  return { kind: 'other', method, path, query }
}

function reject (code: ErrorCode, reason: string): CanonicalRequest {
  return { kind: 'rejected', code, reason }
}

/** Quotes at most MAX_ECHO characters of input, with anything unprintable shown as \xHH. */
function show (s: string): string {
  const cut = s.length > MAX_ECHO
  let out = ''
  const n = cut ? MAX_ECHO : s.length
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    out += c > 0x20 && c < 0x7f && c !== 0x27 && c !== 0x5c ? s[i] : '\\x' + hex2(c & 0xff)
  }
  return `'${out}${cut ? '...' : ''}'`
}

function hex2 (c: number): string {
  return (c < 16 ? '0' : '') + c.toString(16).toUpperCase()
}

/**
 * The rebuild path: validates everything with a precise reason, decodes unreserved/'@' escapes,
 * collapses slashes, drops the trailing slash and checks dot segments on the decoded form.
 */
function slowPath (method: string, target: string, opts: Resolved): CanonicalRequest {
  const len = target.length
  const q = target.indexOf('?')
  const pathEnd = q === -1 ? len : q
  if (pathEnd > opts.maxPath) {
    return reject('PATH_TOO_LONG', `path is ${pathEnd} characters long, the limit is ${opts.maxPath}`)
  }

  let out = ''
  let segNo = 0
  let i = 0
  while (i < pathEnd) {
    if (target.charCodeAt(i) === 0x2f) { i++; continue }
    const segStart = i
    while (i < pathEnd && target.charCodeAt(i) !== 0x2f) i++
    segNo++
    if (i - segStart > opts.maxSegment) {
      return reject('SEGMENT_TOO_LONG', `path segment ${segNo} is ${i - segStart} characters long, the limit is ${opts.maxSegment}`)
    }
    const seg = decodeSegment(target, segStart, i, segNo)
    if (typeof seg !== 'string') return seg
    if (seg === '.' || seg === '..') {
      return reject('PATH_DOT_SEGMENT', `path segment ${segNo} is a dot segment (${show(target.slice(segStart, i))})`)
    }
    if (hasDotPart(seg)) {
      return reject('PATH_DOT_SEGMENT', `path segment ${segNo} has a dot segment between encoded slashes (${show(target.slice(segStart, i))})`)
    }
    out += '/' + seg
  }
  if (out === '') out = '/'

  for (let j = pathEnd + 1; j < len; j++) {
    const c = target.charCodeAt(j)
    if (c < 0x20 || c === 0x7f) return reject('PATH_CONTROL_CHAR', `query contains control character 0x${hex2(c)} at offset ${j}`)
    if (c === 0x20 || c === 0x23) return reject('PATH_BAD_CHAR', `query contains ${c === 0x20 ? 'a space' : "'#'"} at offset ${j}`)
  }

  return classify(routingMethod(method), out, q === -1 ? '' : target.slice(q + 1), opts.root)
}

/** True when a canonical segment, split on '%2F'/'%2f', has a part that is '.' or '..'. */
function hasDotPart (seg: string): boolean {
  let partStart = 0
  for (let j = seg.indexOf('%'); j !== -1; j = seg.indexOf('%', j + 3)) {
    // Every '%' in a canonical segment starts a kept escape, so this cannot match mid-escape.
    if (seg.charCodeAt(j + 1) === 0x32 && (seg.charCodeAt(j + 2) | 0x20) === 0x66) {
      if (isDotPart(seg, partStart, j)) return true
      partStart = j + 3
    }
  }
  return partStart > 0 && isDotPart(seg, partStart, seg.length)
}

/** Validates and decodes one raw segment [start, end); returns the canonical segment or a rejection. */
function decodeSegment (t: string, start: number, end: number, segNo: number): string | CanonicalRequest {
  let out = ''
  let run = start // start of the pending run of characters copied as sent
  let i = start
  while (i < end) {
    const c = t.charCodeAt(i)
    if (c >= 0x80) return reject('PATH_BAD_CHAR', `path contains raw non-ASCII character 0x${c.toString(16).toUpperCase()} at offset ${i}`)
    const k = CLASS[c]
    if (k === C_PLAIN) { i++; continue }
    if (k === C_CONTROL) return reject('PATH_CONTROL_CHAR', `path contains control character 0x${hex2(c)} at offset ${i}`)
    if (k === C_BACKSLASH) return reject('PATH_BACKSLASH', `path contains a backslash at offset ${i}`)
    if (k !== C_PERCENT) return reject('PATH_BAD_CHAR', `path contains ${show(t[i] ?? '')} at offset ${i}, not allowed in a URI path`)

    const v = escapeAt(t, i, end)
    if (v < 0) return reject('PATH_BAD_ENCODING', `invalid percent-escape ${show(t.slice(i, Math.min(i + 3, end)))} at offset ${i}`)
    if (v < 0x20 || v === 0x7f) return reject('PATH_CONTROL_CHAR', `path contains encoded control character ${show(t.slice(i, i + 3))} at offset ${i}`)
    if (v === 0x5c) return reject('PATH_BACKSLASH', `path contains an encoded backslash ${show(t.slice(i, i + 3))} at offset ${i}`)
    if (v < 0x80) {
      if (DECODE[v] === 1) {
        out += t.slice(run, i) + String.fromCharCode(v)
        i += 3
        run = i
      } else {
        i += 3 // kept as sent
      }
      continue
    }
    const n = utf8Length(t, i, end, v)
    if (n < 0) return reject('PATH_BAD_ENCODING', `percent-encoded bytes at offset ${i} in path segment ${segNo} are not valid UTF-8 (${show(t.slice(i, Math.min(i + 12, end)))})`)
    i += 3 * n // kept as sent
  }
  return run === start ? t.slice(start, end) : out + t.slice(run, end)
}

/** Value of the escape '%XX' at i, or -1 when it is not '%' followed by two hex digits before end. */
function escapeAt (t: string, i: number, end: number): number {
  if (i + 2 >= end || t.charCodeAt(i) !== 0x25) return -1
  const h = hexValue(t.charCodeAt(i + 1))
  const l = hexValue(t.charCodeAt(i + 2))
  return h < 0 || l < 0 ? -1 : (h << 4) | l
}

/**
 * Number of escapes (1-4) forming one well-formed UTF-8 character starting with lead byte v
 * at i, or -1 (stray continuation byte, overlong form, surrogate, above U+10FFFF, truncated).
 */
function utf8Length (t: string, i: number, end: number, v: number): number {
  let n: number
  let lo = 0x80
  let hi = 0xbf
  if (v >= 0xc2 && v <= 0xdf) n = 2
  else if (v >= 0xe0 && v <= 0xef) {
    n = 3
    if (v === 0xe0) lo = 0xa0 // overlong
    else if (v === 0xed) hi = 0x9f // surrogates
  } else if (v >= 0xf0 && v <= 0xf4) {
    n = 4
    if (v === 0xf0) lo = 0x90 // overlong
    else if (v === 0xf4) hi = 0x8f // above U+10FFFF
  } else return -1
  for (let k = 1; k < n; k++) {
    const b = escapeAt(t, i + 3 * k, end)
    if (b < lo || b > hi) return -1
    lo = 0x80
    hi = 0xbf
  }
  return n
}
