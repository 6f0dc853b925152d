// Text helpers for input the gate does not control.

import { METHODS } from 'node:http'

/**
 * `s` without the characters of `chars` at either end. Index by index: a regular expression
 * such as `/x+$/` backtracks over every run of those characters that is not at the end, so a
 * long run before a last other character costs quadratic time (16 KiB: 80 ms; 40,000: 0.5 s).
 */
export function trimEnds (s: string, chars: string): string {
  let from = 0
  let to = s.length
  while (from < to && chars.includes(s[from]!)) from++
  while (to > from && chars.includes(s[to - 1]!)) to--
  return from === 0 && to === s.length ? s : s.slice(from, to)
}

const DIGITS = /^-?\d+$/
/** What Ruby's `Integer(s, 10)` takes: white space around, a sign, `0d`, `_` between digits. */
const RUBY_INTEGER = /^[\t\n\v\f\r ]*([+-]?)(?:0[dD])?(\d+(?:_\d+)*)[\t\n\v\f\r ]*$/

/**
 * The number GitLab reads in an `:id`, or null for a full path. Grape coerces an `:id` declared
 * Integer (Helm's `types: [Integer, String]`, `/jobs/:id`; PyPI, Composer and Conan in older
 * GitLab) with Ruby's `Integer(value, 10)`, so `+300`, `3_00`, ` 300`, `0d300` and `0300` are project
 * 300 there; where `:id` is a String, GitLab's find_project reads only `/^-?\d+$/` as an id and
 * looks the rest up as a full path, which always holds a '/'. So an id Ruby reads as a number
 * is that number: the project GitLab acts on, or none at all (a 404, decided as that project).
 * Ruby's `^` and `$` anchor at line breaks (`200\nfoo` is id 200 to GitLab); a path never holds
 * one here, canonicalization refuses control characters (PATH_CONTROL_CHAR).
 */
export function rubyInteger (id: string): number | null {
  if (DIGITS.test(id)) return Number(id)
  const m = RUBY_INTEGER.exec(id)
  return m === null ? null : Number(m[1]! + m[2]!.replaceAll('_', ''))
}

// GitLab's tokens start with gl<letters>- (glcbt-, glpat-, gloas-...), after any instance prefix.
const TOKEN_IN_PATH = /gl[a-z]{2,8}-[\w.-]{8}/i
const BASE64URL = /^[\w-]+$/

/**
 * True when `text` holds a JSON Web Token: a base64url part starting `eyJ` (`{"`) of at least
 * 16 characters (the shortest header, `{"alg":"none"}`, has 19), a dot, another base64url part,
 * a dot. A job's ID tokens (`id_tokens:`, the old CI_JOB_JWT) are such tokens,
 * and open Vault or a cloud account to whoever reads them. Split on the dots and looked at part
 * by part: an expression such as /eyJ[\w-]+\./ scans on from every `eyJ` of a long run again.
 */
function holdsJwt (text: string): boolean {
  if (!text.includes('eyJ')) return false
  const parts = text.split('.')
  for (let k = 0; k + 2 < parts.length; k++) {
    const at = parts[k]!.lastIndexOf('eyJ')
    if (at !== -1 && parts[k]!.length - at >= 16 && BASE64URL.test(parts[k]!.slice(at)) && BASE64URL.test(parts[k + 1]!)) return true
  }
  return false
}

/** True when `text` holds something token-shaped: `gl<letters>-...` or a JSON Web Token. */
export const tokenShaped = (text: string): boolean => TOKEN_IN_PATH.test(text) || holdsJwt(text)

/**
 * A path as a log line may hold it: a segment holding something token-shaped (a token pasted
 * into a URL by mistake; GitLab reads none there), `gl<letters>-...` or a JSON Web Token, is
 * written `[token]`.
 */
export function loggedPath (path: string): string {
  const escaped = path.includes('%')
  if (!escaped && !TOKEN_IN_PATH.test(path) && !holdsJwt(path)) return path
  return path.split('/').map(segment => tokenShaped(segment) || (escaped && segment.includes('%') && tokenShaped(unescaped(segment))) ? '[token]' : segment).join('/')
}

/** Most rounds of percent-decoding unescaped() reads through (`%2567` is `g` after two). */
const UNESCAPE_ROUNDS = 4

/**
 * `text` with its `%XX` escapes decoded, again while any is left, at most UNESCAPE_ROUNDS times:
 * how a log reader may read a path segment. The canonical path keeps escapes Rails decodes only
 * once (`%2567lpat-...` is `%67lpat-...` to GitLab), so a token escaped in part, or twice, was
 * not recognised and was written as sent, its secret part in clear.
 */
function unescaped (text: string): string {
  let s = text
  for (let round = 0; round < UNESCAPE_ROUNDS && s.includes('%'); round++) {
    const next = s.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    if (next === s) break
    s = next
  }
  return s
}

/**
 * A request method as a log line may hold it: one of HTTP's methods as given (any case), anything
 * else `[other]`. The forward-auth listener takes the method from X-Original-Method or
 * X-Forwarded-Method, which a proxy fills with the client's request line (Traefik passes any token
 * there, lower case included), so it is any text the client sent: a token of any shape, not only
 * one token-shaped.
 */
export function loggedMethod (method: string): string {
  // As given first: a line's method is nearly always one already, and is not copied.
  return HTTP_METHODS.has(method) || HTTP_METHODS.has(method.toUpperCase()) ? method : '[other]'
}
const HTTP_METHODS: ReadonlySet<string> = new Set(METHODS)

/**
 * `text` as a string of its own, for a key or value kept past the request. V8 keeps a substring
 * of 13 characters or more as a slice of the string it was cut from, which stays whole as long
 * as the slice lives: a path cut from a request's target kept the target, query included (up to
 * Node's 16 KiB of request line and headers). Joined to a character, the text is copied into a
 * new string, and its slice holds that copy alone.
 */
export function ownString (text: string): string {
  return (' ' + text).slice(1)
}

/** Most characters of client text an answer quotes. */
const QUOTED = 100

/**
 * Client text (a policy name, a package format, a target path) as an answer quotes it: up to 100
 * characters (`most`), then how many there were. A GraphQL document hands one variable to each of
 * its aliased fields, and each field's answer quoted it whole: a 900 KB `targetGroupPath` named by
 * 100 aliased mutations made a 90 MB answer.
 */
export function quoted (text: string, most: number = QUOTED): string {
  // Masked before the cut: a JSON Web Token is recognised by its dots, which a cut may drop.
  const shown = maskedTokens(text.length <= most ? text : text.slice(0, most + MASKED_PAST_CUT))
  return text.length <= most ? shown : `${shown.slice(0, most)}... (${text.length} characters)`
}

/** Characters past quoted()'s cut read to recognise a token the cut falls in. */
const MASKED_PAST_CUT = 4096

/**
 * Client text as the gate's own message may name it: each word (between white space and quotes)
 * that holds something token-shaped written as loggedPath writes a path, its token-shaped
 * segments `[token]`. A token pasted where a name goes (a policy, a package format, a field, a
 * project path in a GraphQL document) is quoted back in the answer otherwise, and the answer is
 * what a CI job's log prints.
 */
export function maskedTokens (text: string): string {
  if (!TOKEN_IN_PATH.test(text) && !holdsJwt(text)) return text
  return text.replace(/[^\s"'`]+/g, word => loggedPath(word))
}

/**
 * A URL-encoded path segment (encodeURIComponent's) with its dots escaped too, for an id, path or
 * name the gate puts in an API path it asks GitLab. Grape takes the answer's format from the raw
 * path's extension before Accept or `?format=` (Formatter#format_from_extension), and GitLab's
 * API declares `text/plain` besides JSON: `GET /projects/acme%2Flib.txt` is project
 * `acme/lib.txt` answered as text, which no lookup can read. `%2E` is no extension to Grape, and
 * the parameter still decodes to `acme/lib.txt`. Ids of digits are unchanged.
 */
export function escapeDots (segment: string): string {
  return segment.replaceAll('.', '%2E')
}

/** `text` as one segment of a GitLab API path: URL-encoded, its dots too (escapeDots). */
export function apiSegment (text: string): string {
  return escapeDots(encodeURIComponent(text))
}
