// fast-check generators for the fuzz targets (targets.ts), biased toward the shapes that break
// parsers: percent-encodings of every kind, dot segments, empty segments, backslashes, control
// bytes, unicode, limits plus or minus one, very many segments; odd Authorization headers and
// Basic credentials; form, JSON and multipart bodies with odd boundaries, deep nesting, many
// parts and truncation. Large inputs are built from a generated piece and a generated count,
// never from a generated character list, so they stay cheap to generate and to shrink.

import fc from 'fast-check'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { parsePattern, type Token } from '../../src/catalog/pattern.ts'

const A = fc.constantFrom
const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>): fc.WeightedArbitrary<T> => ({ weight, arbitrary })

/** Largest generated request target or query, in characters. */
export const MAX_TEXT = 64 * 1024
/** Largest generated header list, in characters: twice Node's default limit on a request head (16 KiB). */
export const MAX_HEADERS = 32 * 1024
/** Largest generated multipart body, in bytes: the body scanner's default inspection limit. */
export const MAX_BODY = 64 * 1024

/**
 * `piece` repeated `count` times, joined, and never longer than `maxChars` (fewer repetitions
 * for a long piece): large inputs without large generation.
 */
const repeated = (piece: fc.Arbitrary<string>, min: number, max: number, sep = '', maxChars = MAX_TEXT): fc.Arbitrary<string> =>
  fc.tuple(piece, fc.integer({ min, max })).map(([p, n]) => {
    const count = Math.max(1, Math.min(n, Math.floor(maxChars / Math.max(1, p.length + sep.length))))
    return Array.from({ length: count }, () => p).join(sep)
  })

/** `open` n times, then `middle`, then `close` n times, with n bounded so the whole stays under maxChars. */
const nested = (open: string, middle: string, close: string, n: number, maxChars: number): string => {
  const depth = Math.max(1, Math.min(n, Math.floor(maxChars / (open.length + close.length))))
  return open.repeat(depth) + middle + close.repeat(depth)
}

/** Lengths just around a limit: limit - 1, limit, limit + 1, and a little further. */
const aroundLimit = (limit: number): fc.Arbitrary<number> =>
  fc.oneof(A(limit - 1, limit, limit + 1), fc.integer({ min: limit - 8, max: limit + 8 }))

// ---------------------------------------------------------------------------------------------
// Paths

/** Percent-escapes: kept, decoded, invalid, double-encoded, controls, UTF-8 good and bad. */
export const ESCAPES = [
  '%2F', '%2f', '%25', '%20', '%3F', '%23', '%3B', '%2B', '%22', // kept as sent
  '%2D', '%2d', '%61', '%41', '%7E', '%5F', '%40', '%30', // unreserved and '@': decoded
  '%2E', '%2e', // encoded dot
  '%5C', '%5c', '%00', '%0A', '%0d', '%09', '%1F', '%7F', '%7f', // backslash and controls
  '%', '%z', '%zz', '%2', '%G0', '%0G', '%%', '%%41', '%-1', '% 1', // invalid
  '%252F', '%252f', '%252E', '%255C', '%2500', '%25%32%46', // double
  '%C3%A9', '%c3%a9', '%E2%82%AC', '%F0%9F%98%80', '%EF%BC%8F', '%E2%80%A8', '%EF%BB%BF', // valid UTF-8
  '%C0%AF', '%C0%AE', '%C1%9C', '%E0%80%AF', '%E0%80%AE', '%F0%80%80%AF', '%F8%80%80%80%AF', // overlong
  '%ED%A0%80', '%ED%BF%BF', '%F4%90%80%80', '%F5%80%80%80', '%FF', '%FE', // surrogates, out of range
  '%C3', '%E2%82', '%F0%9F%98', '%80', '%BF', '%C3%C3', '%C3%28', '%E2%28%A1', '%C3%A9%' // truncated, stray
]

/** Raw characters that are special somewhere: dots, sub-delims, controls, non-ASCII, lone surrogates. */
export const SPECIALS = [
  '.', '..', '...', '.json', '.JSON', 'x.json', '5.json', '.json.json', '%2Ejson', '.xml', '.json%3F', 'json',
  ';', 'a;b=c', ';jsessionid=1', ';.json', ',', '=', '+', '*', ':', '@', '-', '~', '_', '!', '$', '&', "'", '(', ')',
  '\\', '\\..', '\u0000', '\t', '\n', '\r', '\r\n', '\u000b', '\u001f', '\u007f', ' ', '#', '?', '"', '<', '>', '`',
  '{', '}', '|', '^', '[', ']', '%', 'é', '\u0080', '\u00a0', '\u00ff', '\u0100', '\u2028', '\u2029', '\ufeff',
  '\ud800', '\udfff', '\ud83d\ude00', '\uff0f', '\uff0e', '\uff3c', '\u2215', '\u0130', 'ß', '\u212a'
]

const DIGITS = fc.stringMatching(/^-?[0-9]{1,20}$/)

/** Words of the catalog's patterns: statics, with a few GitLab words that appear in values. */
export function catalogWords (routes: readonly CatalogRoute[]): string[] {
  const words = new Set<string>(['api', 'v4', '-', 'latest', 'authorize', 'dist-tags', '@v', 'list', 'info', 'mod', 'zip'])
  for (const route of routes) {
    for (const variant of parsePattern(route.pattern)) {
      for (const token of variant.tokens) {
        if (token.kind === 'static') words.add(token.value)
        else if (token.kind === 'glob' && token.prefix !== '') words.add(token.prefix)
        else if (token.kind === 'param' && token.suffix !== '') words.add('v1' + token.suffix)
      }
    }
  }
  return [...words].sort()
}

/** A few characters of raw path text. */
function pathUnit (words: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    w(6, A(...words)),
    w(5, A(...ESCAPES)),
    w(5, A(...SPECIALS)),
    w(3, fc.string({ unit: 'binary-ascii', maxLength: 6 })),
    w(1, fc.string({ unit: 'binary', maxLength: 3 })),
    w(2, DIGITS),
    w(1, fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/))
  )
}

/** One raw path segment (no separator), occasionally very long. */
export function rawSegment (words: readonly string[]): fc.Arbitrary<string> {
  const unit = pathUnit(words)
  const short = fc.array(unit, { minLength: 1, maxLength: 5 }).map(parts => parts.join(''))
  const long = fc.tuple(A('a', 'x.', '%2F', '%C3%A9', '.', '%25', '-', '%2D', 'a%2F..%2F'), aroundLimit(4096))
    .map(([piece, length]) => piece.repeat(Math.ceil(length / piece.length)).slice(0, length))
  const veryLong = repeated(unit, 200, 3000, '', 16 * 1024)
  return fc.oneof(w(40, short), w(1, long), w(1, veryLong))
}

const SEPARATORS = ['/', '/', '/', '/', '/', '//', '///', '/./', '/../', '/.', '/..', '\\', '/\\', '%2F', '%2f', '/%2e/', '/%2E%2E/', '/.%2e/', '/%2e./']

/** A query string: credential parameters and junk, with every separator Rack knows. */
export function queryString (): fc.Arbitrary<string> {
  const pair = fc.tuple(paramName(), A('=', '=', '', '==', '%3D'), fc.oneof(tokenValue(), fc.string({ maxLength: 12 })))
    .map(([k, eq, v]) => k + eq + v)
  const pairs = fc.tuple(fc.array(pair, { maxLength: 6 }), A('&', '&', ';', '&&', '; ', '&amp;', ',')).map(([ps, sep]) => ps.join(sep))
  return fc.oneof(
    w(6, pairs),
    w(2, fc.string({ unit: 'binary', maxLength: 40 })),
    w(1, A('', '&', ';', '=', '%', '%zz', '%E9', '%C3%28', '+', '%2B', 'a=%', 'job_token=%', '#frag')),
    w(1, repeated(pair.map(p => p.slice(0, 40)), 100, 3000, '&'))
  )
}

/** A raw request target (path and optional query), biased toward the API prefix. */
export function requestTarget (words: readonly string[]): fc.Arbitrary<string> {
  const seg = rawSegment(words)
  const prefix = A('/api/v4', '/api/v4', '/api/v4', '/gitlab/api/v4', '//api//v4', '/api/v4/', '/%61pi/v4', '/api/%76%34', '/api%2Fv4',
    '/api/v4/.', '/API/v4', '/api/v4/../v4', '/gitlab/../api/v4', '/\\api/v4', '', '/', '//', '/-', '/api/v4%2F')
  const body = fc.array(fc.tuple(A(...SEPARATORS), seg), { maxLength: 10 })
    .map(parts => parts.map(([s, p]) => s + p).join(''))
  // Very many segments: the shape that makes matchers with several globs slow.
  const shortSeg = fc.array(pathUnit(words), { minLength: 1, maxLength: 3 }).map(parts => parts.join(''))
  const many = fc.tuple(fc.array(shortSeg, { minLength: 1, maxLength: 3 }), fc.integer({ min: 50, max: 4200 }), A('/', '//'))
    .map(([segs, n, sep]) => Array.from({ length: n }, (_, i) => sep + segs[i % segs.length]!).join('').slice(0, MAX_TEXT))
  const tail = fc.oneof(w(8, fc.constant('')), w(1, A('/', '//', '/.', '?', '#', '?#', '/?')), w(3, queryString().map(q => '?' + q)))
  return fc.tuple(prefix, fc.oneof(w(12, body), w(1, many)), body, tail).map(([p, a, b, t]) => (p + a + b + t).slice(0, MAX_TEXT))
}

export const METHOD = fc.oneof(
  w(10, A('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS')),
  w(2, A('get', 'head', 'Head', 'post', 'TRACE', 'CONNECT', '', ' GET', 'GET\u0000', 'ß', 'ı', '\ud800')),
  w(1, fc.string({ maxLength: 8 }))
)

/** A segment that is likely to survive canonicalization: what router parameters see. */
function paramValue (words: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    w(4, fc.stringMatching(/^[A-Za-z0-9._~-]{1,16}$/)),
    w(3, DIGITS.filter(s => s !== '')),
    w(3, A(...words)),
    w(2, A('5.json', 'a.json', '.json', 'x.json.json', 'v1.2.3', '1.0.0-rc.1', '@scope%2Fname', 'group%2Fproject', 'a%2F..%2Fb',
      '%252F', '%C3%A9', '%F0%9F%98%80', 'a;b', "it's", '*', '...', 'a..b', '%2e%2e', '%2E', '%7E', '-', '@v', 'latest')),
    w(2, fc.array(A(...ESCAPES, ...SPECIALS), { minLength: 1, maxLength: 4 }).map(p => p.join('')))
  )
}

/**
 * A target instantiating a catalog pattern: statics as written (or mangled), parameters and
 * globs with hostile values, globs sometimes thousands of segments long.
 */
export function routedTarget (routes: readonly CatalogRoute[], words: readonly string[]): fc.Arbitrary<{ method: string, target: string }> {
  const value = paramValue(words)
  const variants = routes.flatMap(route => parsePattern(route.pattern).map(v => ({ method: route.method, tokens: v.tokens })))
  const staticForm = (s: string): fc.Arbitrary<string> => fc.oneof(
    w(12, fc.constant(s)),
    w(1, fc.constant(s.toUpperCase())),
    w(1, fc.constant(s.replace(/[a-z@-]/, c => '%' + c.charCodeAt(0).toString(16).toUpperCase()))),
    w(1, fc.constant(s + '.json')),
    w(1, value)
  )
  const tokenText = (token: Token): fc.Arbitrary<string> => {
    if (token.kind === 'static') return staticForm(token.value)
    if (token.kind === 'param') return fc.tuple(value, A(token.suffix, token.suffix, token.suffix + '.json', '')).map(([v, s]) => v + s)
    const segs = fc.oneof(
      w(8, fc.array(value, { minLength: 1, maxLength: 6 })),
      w(1, fc.tuple(fc.array(value, { minLength: 1, maxLength: 3 }), fc.integer({ min: 100, max: 4000 }))
        .map(([vs, n]) => Array.from({ length: n }, (_, i) => vs[i % vs.length]!)))
    )
    return segs.map(parts => (token.prefix + parts.join('/')).slice(0, MAX_TEXT))
  }
  const instance = fc.constantFrom(...variants).chain(v =>
    fc.tuple(fc.constant(v.method), fc.tuple(...v.tokens.map(tokenText))))
  return fc.tuple(instance, A('', '', '', '/', '.json', '/x', '?job_token=glcbt-x'), fc.oneof(w(6, fc.constant(null)), w(1, METHOD)))
    .map(([[method, parts], tail, other]) => ({ method: other ?? method, target: ('/api/v4/' + parts.join('/') + tail).slice(0, MAX_TEXT) }))
}

// ---------------------------------------------------------------------------------------------
// Credentials

const PARAM_NAMES = ['job_token', 'token', 'private_token', 'access_token', 'bearer_token', 'JOB_TOKEN', 'job-token', 'jobtoken',
  'job_token[]', '[job_token]', ' job_token', '[[job_token]]', 'job_token[a][b]', 'job_token]', '[]job_token', 'job%5Ftoken',
  'job_%74oken', 'job+token', 'job_token%00', '%20job_token', 'job_token ', '\u0000job_token', 'ĵob_token', 'tok\u0000en', '', '[', ']',
  'ref', 'variables[KEY]', 'file']

export function paramName (): fc.Arbitrary<string> {
  return fc.oneof(
    w(8, A(...PARAM_NAMES)),
    w(1, repeated(A('[', ']', '[]', '[[', ' '), 10, 3000).map(b => b + 'job_token')),
    w(2, fc.string({ maxLength: 10 }))
  )
}

/** Token-like values: job tokens, other tokens, near misses, empties, huge ones. */
export function tokenValue (): fc.Arbitrary<string> {
  const body = fc.stringMatching(/^[A-Za-z0-9_-]{0,40}$/)
  return fc.oneof(
    w(6, body.map(b => 'glcbt-' + b)),
    w(3, A('glcbt-64_AAAAaaaa1111aaaa', 'glcbt-64_BBBBbbbb2222bbbb', 'glpat-xxxxxxxxxxxxxxxxxxxx', 'glptt-tttttttt', 'gldt-deploy',
      'glcbt-', 'GLCBT-x', ' glcbt-x', 'glcbt-x ', 'glcbt-a,glcbt-b', 'glcbt-\u0000', 'glcbt-é', 'glcbt-%41', '', ' ', ',', ', ,')),
    w(2, fc.string({ maxLength: 20 })),
    w(1, fc.tuple(A('glcbt-', 'glpat-', ''), fc.integer({ min: 8000, max: 70_000 })).map(([p, n]) => p + 'a'.repeat(n)))
  )
}

/** Ruby-lenient base64 of user:password, then mangled with bytes outside the alphabet. */
function basicParam (): fc.Arbitrary<string> {
  const userPass = fc.tuple(
    fc.oneof(A('gitlab-ci-token', 'glcbt-user', 'user', '', 'gitlab-ci-token:x', 'é'), fc.string({ maxLength: 10 })),
    A(':', ':', '', '::'),
    tokenValue()
  ).map(([u, c, p]) => Buffer.from(u + c + p, 'utf8').toString('base64'))
  const mangle = fc.array(fc.tuple(fc.nat(), A('-', '_', '=', '==', ' ', '\t', '.', '%', '*', 'é', '\u0100', '\ud800', '\u0000', '\n', 'A', '====')), { maxLength: 6 })
  const mangled = fc.tuple(userPass, mangle, A('', '', '=', '==', '===', 'A', 'AB', 'ABC'))
    .map(([b, edits, end]) => {
      let s = b
      for (const [at, junk] of edits) {
        const i = s.length === 0 ? 0 : at % (s.length + 1)
        s = s.slice(0, i) + junk + s.slice(i)
      }
      return s + end
    })
  return fc.oneof(
    w(8, mangled),
    w(2, fc.string({ unit: 'binary', maxLength: 30 })),
    w(1, fc.base64String({ maxLength: 40 })),
    w(1, repeated(A('A', 'QQ==', '=', '-', 'Z2l0bGFiLWNpLXRva2VuOmdsY2J0LXg=', 'é'), 1000, 40_000))
  )
}

/** A compact JWS-shaped string whose payload may or may not carry a job token. */
function jwtLike (): fc.Arbitrary<string> {
  const b64u = (s: string): string => Buffer.from(s, 'utf8').toString('base64url')
  const payload = fc.oneof(
    w(4, tokenValue().map(t => JSON.stringify({ access_token: t }))),
    w(1, A('null', '[]', '"glcbt-x"', '{"access_token":null}', '{"access_token":["glcbt-x"]}', '{', '', '{"__proto__":{"access_token":"glcbt-x"}}')),
    w(1, fc.integer({ min: 1000, max: 20_000 }).map(n => nested('[', '', ']', n, 40_000))),
    w(1, fc.string({ maxLength: 20 }))
  )
  return fc.tuple(payload, A('', '.', '..', 'x'), fc.boolean())
    .map(([p, extra, encode]) => `${b64u('{"alg":"HS256"}')}.${encode ? b64u(p) : p}.sig${extra}`)
}

export function authorizationValue (): fc.Arbitrary<string> {
  const scheme = A('Basic ', 'basic ', 'BASIC ', 'Basic  ', 'Basic\t', ' Basic ', 'Basic\u00a0', 'Bearer ', 'bearer ', 'Bearer\t', 'Token ',
    'Negotiate ', 'Basic,', '', ' ')
  return fc.oneof(
    w(5, basicParam().map(b => 'Basic ' + b)),
    w(4, fc.tuple(scheme, fc.oneof(basicParam(), tokenValue(), jwtLike())).map(([s, v]) => s + v)),
    w(2, tokenValue()),
    w(1, A('', ' ', 'Basic', 'Basic ', 'Bearer', 'Bearer ', '\t', ',', 'Basic Og==', 'Basic Z2l0bGFiLWNpLXRva2VuOg==')),
    w(1, fc.string({ unit: 'binary', maxLength: 30 }))
  )
}

const HEADER_NAMES = ['authorization', 'Authorization', 'AUTHORIZATION', 'job-token', 'JOB-TOKEN', 'Job-Token', 'job_token', 'JOB_TOKEN',
  'private-token', 'PRIVATE-TOKEN', 'private_token', 'deploy-token', 'Deploy_Token', 'x-nuget-apikey', 'X-NuGet-ApiKey', 'cookie',
  'x-job-token', 'authorization ', 'job-token\u0000', 'jоb-token', 'content-type', '']

/** Cuts a header list to MAX_HEADERS characters in all, as a server's header size limit would. */
function capHeaders (pairs: Array<[string, string]>): Array<[string, string]> {
  let room = MAX_HEADERS
  const out: Array<[string, string]> = []
  for (const [n, v] of pairs) {
    if (room <= 0) break
    out.push([n, v.slice(0, Math.max(0, room - n.length))])
    room -= n.length + v.length + 4
  }
  return out
}

export function headerList (): fc.Arbitrary<Array<[string, string]>> {
  const name = fc.oneof(w(8, A(...HEADER_NAMES)), w(1, fc.string({ maxLength: 12 })))
  const value = fc.oneof(w(4, tokenValue()), w(4, authorizationValue()), w(1, fc.string({ maxLength: 20 })))
  const pair = fc.tuple(name, value)
  const auth = fc.tuple(A('authorization', 'Authorization'), authorizationValue())
  return fc.oneof(
    w(8, fc.array(fc.oneof(pair, auth), { maxLength: 8 })),
    w(1, fc.tuple(auth, fc.integer({ min: 10, max: 2000 })).map(([[n, v], count]) => Array.from({ length: count }, (): [string, string] => [n, v.slice(0, 200)])))
  ).map(capHeaders)
}

// ---------------------------------------------------------------------------------------------
// Bodies

/** Boundaries: valid by RFC 2046 (as the body scanner accepts them) and a few it refuses. */
export function boundary (): fc.Arbitrary<string> {
  return fc.oneof(
    w(6, A('b', 'X', 'AaB03x', '------------------------d74496d66958873e', 'a'.repeat(70), "'()+_-./:=?", '--', '-', '=', 'boundary',
      'job_token', 'glcbt-', 'name=', '\r\n', '\r\n\r\n')),
    w(4, fc.stringMatching(/^[A-Za-z0-9'()+_\-./:=?]{1,70}$/)),
    w(1, fc.string({ unit: 'binary', minLength: 1, maxLength: 10 }))
  )
}

const DISPOSITIONS = [
  'form-data; name="job_token"', 'form-data; name=job_token', 'form-data; name="job_token[]"', 'form-data; name="[job_token]"',
  "form-data; name*=UTF-8''job%5Ftoken", "form-data; name*=''token", 'form-data; name="tok\\"en"', 'form-data; name="token"; filename="a.txt"',
  'form-data; filename="x"; name="job_token"', 'form-data; name="', 'form-data; name=""', 'form-data;name = "private_token"',
  'form-data; xname="job_token"', "form-data; filename*=UTF-8''x", 'form-data; name="%6Aob_token"', 'form-data; name="file"; filename="f.bin"',
  'form-data; NAME="TOKEN"', 'form-data; name="access_token', 'form-data; name=job_token; name=other', 'form-data; name="x"', 'form-data',
  'attachment; filename=a; name=token', 'form-data; name=\'job_token\'', 'form-data; name="job_token"\r\n\tcontinued'
]

/** One part: delimiter line, header block, value; each piece sometimes malformed. */
function part (tokens: fc.Arbitrary<string>): fc.Arbitrary<{ pre: string, after: string, headers: string, end: string, value: string }> {
  const headerLine = fc.oneof(
    w(6, A(...DISPOSITIONS).map(d => 'Content-Disposition: ' + d)),
    w(2, A('Content-Type: text/plain', 'Content-Type: application/octet-stream', 'content-disposition:form-data;name=token', 'X: y', ': ', '')),
    w(1, fc.string({ maxLength: 20 })),
    w(1, fc.tuple(A('X-Pad: ', 'Content-Disposition: form-data; name="job_token"; x="'), aroundLimit(16 * 1024), A('a', ' ', '\n')).map(([h, n, c]) => h + c.repeat(n)))
  )
  const value = fc.oneof(
    w(6, tokens),
    w(2, fc.string({ maxLength: 20 })),
    w(1, A('', '\r\n', '\n', '--', '\r\n--', 'glcbt', 'glcbt-\r\n')),
    w(1, fc.tuple(A('glcbt-', 'x', ''), fc.integer({ min: 100, max: 3000 })).map(([p, n]) => p + 'a'.repeat(n))),
    w(1, fc.tuple(A('glcbt-', 'x', ''), aroundLimit(8192 + 3), A('a', '\r\n')).map(([p, n, c]) => p + c.repeat(n)))
  )
  return fc.record({
    pre: A('\r\n', '\r\n', '', '\n', 'junk\r\n', '\r'),
    after: A('\r\n', '\r\n', '\r\n', '--', '--\r\n', ' \r\n', '\t\r\n', '\n', '', 'x\r\n', '-'),
    headers: fc.array(headerLine, { maxLength: 3 }).map(ls => ls.join(['\r\n', '\n'][ls.length % 2]!)),
    end: A('\r\n\r\n', '\r\n\r\n', '\r\n\r\n', '\n\n', '\n\r\n', '\r\n', '', '\r\n\r'),
    value
  })
}

export interface MultipartSpec {
  boundary: string
  body: Buffer
}

/** A multipart body for a boundary: preamble, parts (sometimes hundreds), closing, epilogue, maybe truncated. */
export function multipartBody (): fc.Arbitrary<MultipartSpec> {
  return boundary().chain(b => {
    const tokens = fc.oneof(w(3, tokenValue()), w(1, fc.constant('--' + b)), w(1, fc.constant('x\r\n--' + b + '\r\nname="token"\r\n\r\nglcbt-y')))
    const p = part(tokens)
    const delimiter = fc.oneof(w(12, fc.constant('--' + b)), w(1, A('--' + b.toUpperCase(), '-' + b, '---' + b, '--' + b.slice(1), '--' + b + ' ', '--')))
    const render = ([pp, d]: [{ pre: string, after: string, headers: string, end: string, value: string }, string]): string =>
      pp.pre + d + pp.after + pp.headers + pp.end + pp.value
    const one = fc.tuple(p, delimiter).map(render)
    const parts = fc.oneof(
      w(10, fc.array(one, { maxLength: 6 })),
      w(1, fc.tuple(fc.array(one, { minLength: 1, maxLength: 2 }), fc.integer({ min: 50, max: 2000 }))
        .map(([ps, n]) => {
          const size = ps.reduce((sum, x) => sum + x.length, 0) / ps.length
          return Array.from({ length: Math.max(1, Math.min(n, Math.floor(MAX_BODY / 2 / Math.max(1, size)))) }, (_, i) => ps[i % ps.length]!)
        }))
    )
    return fc.record({
      preamble: A('', '', 'preamble\r\n', '\r\n', '--', '-' + b),
      parts,
      closing: A('\r\n--' + b + '--', '\r\n--' + b + '--\r\n', '\r\n--' + b + '--epilogue\r\n--' + b + '\r\nname=token\r\n\r\nglcbt-z', '', '\r\n--' + b, '--' + b + '-', '\r\n--' + b + '--\r\n--' + b + '--'),
      cut: fc.oneof(w(6, fc.constant(-1)), w(1, fc.nat()))
    }).map(({ preamble, parts: ps, closing, cut }) => {
      let body = Buffer.from(preamble + ps.join('') + closing, 'utf8')
      if (cut >= 0) body = body.subarray(0, cut % (body.length + 1)) // truncated
      if (body.length > MAX_BODY) body = body.subarray(body.length - MAX_BODY) // keep the closing delimiter
      return { boundary: b, body }
    })
  })
}

/** Cut points for a body: a few random splits, single bytes, or none. Fractions, so they fit any length. */
export interface Chunking { mode: 'whole' | 'cuts' | 'bytes', cuts: number[] }

export function chunking (): fc.Arbitrary<Chunking> {
  return fc.oneof(
    w(1, fc.constant<Chunking>({ mode: 'whole', cuts: [] })),
    w(8, fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 24 }).map((cuts): Chunking => ({ mode: 'cuts', cuts }))),
    w(1, fc.constant<Chunking>({ mode: 'bytes', cuts: [] }))
  )
}

/** Splits a body by a chunking; 'bytes' splits bodies up to maxByteChunks bytes into single bytes (longer ones into 64). */
export function splitBody (body: Buffer, c: Chunking, maxByteChunks = 4096): Buffer[] {
  if (body.length === 0) return []
  if (c.mode === 'whole') return [body]
  let points: number[]
  if (c.mode === 'bytes') {
    const step = body.length <= maxByteChunks ? 1 : Math.ceil(body.length / 64)
    points = []
    for (let i = step; i < body.length; i += step) points.push(i)
  } else {
    points = [...new Set(c.cuts.map(x => Math.floor(x / 1_000_001 * (body.length + 1))))].sort((a, b) => a - b)
  }
  const chunks: Buffer[] = []
  let at = 0
  for (const p of points) {
    if (p <= at || p >= body.length) continue
    chunks.push(body.subarray(at, p))
    at = p
  }
  chunks.push(body.subarray(at))
  return chunks
}

/** JSON text: generated values, hostile members, deep nesting, duplicates, truncation, invalid UTF-8. */
export function jsonBody (): fc.Arbitrary<Buffer> {
  const member = fc.tuple(fc.oneof(w(3, A(...PARAM_NAMES)), w(1, fc.string({ maxLength: 8 }))),
    fc.oneof(w(4, tokenValue().map(t => JSON.stringify(t))), w(2, fc.jsonValue({ maxDepth: 3 }).map(v => JSON.stringify(v))),
      w(1, A('null', 'false', 'true', '0', '""', '{}', '[]', '1e999', '-0', '"\\u0000glcbt-x"', '"\\ud800"', '"glcbt-\\u0041"', '["glcbt-x"]', '{"a":"glcbt-x"}')),
      w(1, fc.tuple(A('[', '{"a":', '[{"job_token":'), fc.integer({ min: 10, max: 40_000 }), A(']', '}', ']}'))
        .map(([open, n, close]) => nested(open, open === '[' ? '' : '1', close, n, 80_000)))))
    .map(([k, v]) => JSON.stringify(k) + ':' + v)
  const object = fc.tuple(fc.array(member, { maxLength: 6 }), A(',', ', ', ',\n', ' ,\t')).map(([ms, sep]) => '{' + ms.join(sep) + '}')
  const text = fc.oneof(
    w(8, object),
    w(1, fc.jsonValue().map(v => JSON.stringify(v))),
    w(1, A('', ' ', '\ufeff{}', '{', '}', '[', '"', 'null', '{"job_token":"glcbt-x"', '{"job_token":"glcbt-x"}}', '{"a":1,}', '\u00a0{}', '{"job_token"\u00a0:"glcbt-x"}')),
    w(1, fc.tuple(A('[', '{"a":', ' '), fc.integer({ min: 1000, max: 40_000 })).map(([o, n]) => nested(o, '', '', n, 80_000))),
    w(1, fc.tuple(member, fc.integer({ min: 100, max: 3000 })).map(([m, n]) => {
      const count = Math.max(1, Math.min(n, Math.floor(128 * 1024 / (m.length + 1))))
      return '{' + Array.from({ length: count }, () => m).join(',') + '}'
    }))
  )
  return fc.tuple(text, fc.oneof(w(8, fc.constant(-1)), w(1, fc.nat())), fc.oneof(w(8, fc.constant(null)), w(1, fc.uint8Array({ minLength: 1, maxLength: 4 }))))
    .map(([t, cut, junk]) => {
      let b = Buffer.from(t, 'utf8')
      if (cut >= 0) b = b.subarray(0, cut % (b.length + 1))
      if (junk !== null) b = Buffer.concat([b.subarray(0, Math.floor(b.length / 2)), Buffer.from(junk), b.subarray(Math.floor(b.length / 2))])
      return b
    })
}

/** application/x-www-form-urlencoded text, with nested brackets, bad escapes and raw bytes. */
export function formBody (): fc.Arbitrary<Buffer> {
  const text = fc.oneof(
    w(8, queryString()),
    w(1, fc.tuple(A('a[', '[', 'job_token['), fc.integer({ min: 100, max: 30_000 })).map(([o, n]) => nested(o, '=glcbt-x', '', n, 80_000))),
    w(1, fc.tuple(A('%', '%2', '%E9', '%C3%28', '+', '&', ';', '=', '%25'), fc.integer({ min: 100, max: 30_000 })).map(([o, n]) => nested('', 'job_token=', o, n, 80_000)))
  )
  return fc.tuple(text, fc.oneof(w(8, fc.constant(null)), w(1, fc.uint8Array({ minLength: 1, maxLength: 8 }))))
    .map(([t, junk]) => junk === null ? Buffer.from(t, 'utf8') : Buffer.concat([Buffer.from(t, 'utf8'), Buffer.from(junk)]))
}

export interface BodyRequest {
  type: 'form' | 'json' | 'multipart'
  method: string
  boundary: string
  body: Buffer
  headers: Record<string, string>
  chunks: Chunking
  small: boolean
}

/** A request body with the headers that announce it (sometimes wrongly), for plan() and read(). */
export function bodyRequest (): fc.Arbitrary<BodyRequest> {
  const typed = fc.oneof(
    formBody().map(body => ({ type: 'form' as const, boundary: '', body })),
    jsonBody().map(body => ({ type: 'json' as const, boundary: '', body })),
    multipartBody().map(m => ({ type: 'multipart' as const, ...m }))
  )
  return typed.chain(t => {
    const ct = t.type === 'form'
      ? A('application/x-www-form-urlencoded', 'APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8', '', ' ', 'application/x-www-form-urlencoded,text/plain', 'text/plain')
      : t.type === 'json'
        ? A('application/json', 'application/json; charset=utf-8', 'text/x-json', 'application/jsonrequest', 'application/vnd.api+json', 'Application/JSON', 'application/json,', 'json')
        : fc.oneof(
          w(6, A(`multipart/form-data; boundary=${t.boundary}`, `multipart/form-data; boundary="${t.boundary}"`, `multipart/mixed;boundary=${t.boundary}`,
            `MULTIPART/FORM-DATA; BOUNDARY=${t.boundary}; charset=utf-8`, `multipart/form-data; boundary = ${t.boundary} `)),
          w(1, A('multipart/form-data', 'multipart/form-data; boundary=', 'multipart/form-data; boundary=""', `multipart/form-data; boundary=${t.boundary}; boundary=x`,
            `multipart/form-data; xboundary=${t.boundary}`, `multipart/form-data; boundary="${t.boundary}`, `multipart/form-data, boundary=${t.boundary}`,
            `multipart/form-data; boundary=${t.boundary},x`)),
          w(1, repeated(A(';', '; boundary', ' ', ';x=y'), 100, 4000).map(p => `multipart/form-data${p}; boundary=${t.boundary}`))
        )
    return fc.record({
      contentType: ct,
      length: A('exact', 'exact', 'exact', 'none', 'zero', 'huge', 'junk', 'short'),
      chunked: fc.oneof(w(4, fc.constant(false)), w(1, fc.constant(true))),
      encoding: fc.oneof(w(8, fc.constant(null)), w(1, A('gzip', 'identity', ' IDENTITY ', '', 'br, identity'))),
      method: fc.oneof(w(6, A('POST', 'PUT', 'PATCH')), w(1, A('GET', 'post', 'DELETE'))),
      chunks: chunking(),
      small: fc.oneof(w(4, fc.constant(false)), w(1, fc.constant(true)))
    }).map(r => {
      const headers: Record<string, string> = {}
      if (r.contentType !== '') headers['content-type'] = r.contentType
      const lengths = { exact: String(t.body.length), zero: '0', huge: '99999999999', junk: 'abc', short: String(Math.floor(t.body.length / 2)) } as const
      if (r.length !== 'none') headers['content-length'] = lengths[r.length]
      if (r.chunked || r.length === 'none') headers['transfer-encoding'] = 'chunked'
      if (r.encoding !== null) headers['content-encoding'] = r.encoding
      return { type: t.type, method: r.method, boundary: t.boundary, body: t.body, headers, chunks: r.chunks, small: r.small }
    })
  })
}

// ---------------------------------------------------------------------------------------------
// GraphQL documents

/** Pieces of GraphQL text: tokens, and the characters where graphql-ruby and graphql-js part ways. */
const GRAPHQL_PIECES = [
  '{', '}', '(', ')', '[', ']', ':', '$', '@', '!', '=', '|', '&', '...', '..', ',', ' ', '\n', '\r', '\r\n', '\t', '\ufeff', '\u00a0', '\u2028', '\u0000',
  'query', 'mutation', 'subscription', 'fragment', 'on', 'extend', 'project', 'fullPath', 'a', '_x1', 'é',
  '1', '-0', '01', '1.5e3', '1.', '0x1', 'true', 'null', '$v', '@skip(if: true)',
  '"', '""', '"""', '""""', '"""""', '\\', '\\"', '\\"""', '\\u0067', '\\u{67}', '\\u{0067}', '\\uD83D\\uDE00', '\\uD800', '\\x',
  '#', '# c', '#\r', '"acme/lib"', '"""acme/lib"""', '"""\n  acme/lib\n"""'
]

/**
 * GraphQL text for the document reader: pieces strung together, a document that parses with
 * pieces dropped into it, and long or deep ones (many fields, nested brackets, long strings and
 * comments) up to 64 KiB.
 */
export function graphqlDocument (): fc.Arbitrary<string> {
  const piece = A(...GRAPHQL_PIECES)
  const strung = fc.array(piece, { maxLength: 60 }).map(a => a.join(''))
  const valid = A('{ project(fullPath: "acme/lib") { id } }', 'query Q($p: ID = "x") { a: project(fullPath: $p) { ...F } } fragment F on Project { id }',
    'mutation { m(input: {x: [1, 2.5, "s", """b""", null, E]}) { errors } }', '{ __typename }')
  const seeded = fc.tuple(valid, fc.array(fc.tuple(fc.nat(), piece), { maxLength: 4 }))
    .map(([doc, inserts]) => inserts.reduce<string>((d, [at, p]) => d.slice(0, at % (d.length + 1)) + p + d.slice(at % (d.length + 1)), doc))
  const large = fc.oneof(
    repeated(A('a ', 'b: project(fullPath: "acme/lib") { id } ', '# comment\r', '"""x""" ', '\\"""'), 100, 20_000).map(s => `{ ${s} }`),
    repeated(A('#c\r', '#c\r\n', '# \r \r'), 100, 20_000).map(s => `${s}\n{ a }`),
    fc.tuple(A('{ a', '[', '(x: ', '{ a(x: {y: '), fc.integer({ min: 10, max: 30_000 })).map(([o, n]) => nested(o, ' 1 ', '}', n, MAX_TEXT)),
    fc.tuple(A('"', '"""', '#'), fc.integer({ min: 100, max: 60_000 })).map(([q, n]) => `{ a(x: ${q}${'y'.repeat(n)}${q === '#' ? '\r' : q}) }`)
  )
  return fc.oneof(w(4, strung), w(4, seeded), w(1, large))
}
