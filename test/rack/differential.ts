// The differential test against Rack: generated requests go to the Rack oracle
// (test/helpers/rack-oracle.rb, Debian's ruby-rack) and through the gate's identity stage, called
// directly (no sockets): canonicalize, the Connection check, route match, then
// createIdentityStage().run() with the body as a stream, which plans the body, reads or guards
// it and decides the credential. The gate must find every job token Rack finds (finding more, or
// refusing the request, is fine), and route the method Rack routes after Rack::MethodOverride
// (or refuse).
//
// Used by differential.slow.ts (`npm run test:rack`, 100,000 requests). RACK_SEED and RACK_RUNS
// override the seed and count.

import fc from 'fast-check'
import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { CREDENTIAL_HEADERS } from '../../src/identity/credentials.ts'
import { createIdentityStage, type IdentityStage } from '../../src/identity/stage.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { connectionDropsDecisionHeader } from '../../src/proxy/forward.ts'
import { canonicalize } from '../../src/routing/canonical.ts'
import type { OracleAnswer, OracleRequest, RackOracle } from '../helpers/rack-oracle.ts'
import { catalogRouter, identityFor, stubResolver } from '../identity/harness.ts'

// ---------------------------------------------------------------------------------------------
// Tokens. Job tokens start with glcbt-, but for GitLab JOB-TOKEN, job_token= and Basic
// gitlab-ci-token are job tokens whatever they look like (older unprefixed tokens): LEGACY.

export const JOB_A = 'glcbt-64_AAAAaaaa1111aaaa'
export const JOB_B = 'glcbt-64_BBBBbbbb2222bbbb'
export const JOB_JWT = 'glcbt-eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiJ4In0.c2lnbmF0dXJl'
export const LEGACY = 'l3gacyToken0123456789abcdef'
export const PAT = 'glpat-pppppppppppppppppppp'
export const TRIGGER = 'glptt-tttttttttttttttttttt'
const PREFIXED = new Set([JOB_A, JOB_B, JOB_JWT])
/** Where GitLab takes any value as a job token (the unprefixed LEGACY counts only there). */
const ALWAYS_JOB = new Set(['query:job_token', 'body:job_token', 'json:job_token', 'header:job-token', 'basic:gitlab-ci-token', 'basic-any:gitlab-ci-token'])
/** Paths of routes that declare `authenticate_with` (Helm, Debian): TokenLocator reads Basic under any scheme there. */
const AUTHENTICATE_WITH_PATHS = new Set(['/api/v4/projects/42/packages/helm/stable/index.yaml', '/api/v4/projects/42/packages/debian/dists/bookworm/Release'])

// ---------------------------------------------------------------------------------------------
// The generated request

export interface GenRequest {
  readonly method: string
  readonly path: string
  readonly query: string
  /** Header lines in order, latin1, without the framing header (added from `framing`). */
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Buffer
  readonly framing: 'length' | 'chunked'
  /** Inspect with a tiny buffer limit, so any multipart body streams through the guard. */
  readonly small: boolean
  /** Size of the chunks the body arrives in. */
  readonly chunk: number
}

export function headerLines (g: GenRequest): Array<[string, string]> {
  const lines = g.headers.map(([n, v]) => [n, v] as [string, string])
  if (g.body.length > 0) lines.push(g.framing === 'chunked' ? ['Transfer-Encoding', 'chunked'] : ['Content-Length', String(g.body.length)])
  return lines
}

export function target (g: GenRequest): string {
  return g.query === '' ? g.path : `${g.path}?${g.query}`
}

export function oracleRequest (g: GenRequest): OracleRequest {
  return { method: g.method, target: target(g), headers: headerLines(g), body: g.body }
}

/** Node's IncomingMessage.headers from raw lines (lib/_http_incoming.js, _addHeaderLine). */
export function nodeHeaders (lines: ReadonlyArray<readonly [string, string]>): IncomingHttpHeaders {
  const single = new Set(['content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
    'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires'])
  const out: Record<string, string | string[]> = {}
  for (const [rawName, value] of lines) {
    const name = rawName.toLowerCase()
    const prior = out[name]
    if (prior === undefined) out[name] = name === 'set-cookie' ? [value] : value
    else if (name === 'set-cookie') (prior as string[]).push(value)
    else if (single.has(name)) continue
    else out[name] = `${prior as string}${name === 'cookie' ? '; ' : ', '}${value}`
  }
  return out
}

/** For a failure report: the request as it would be sent, escapes visible. */
export function describe (g: GenRequest): string {
  const lines = [`${g.method} ${target(g)}`, ...headerLines(g).map(([n, v]) => `${n}: ${v}`)]
  return `${JSON.stringify(lines.join('\r\n'))}\nbody (${g.small ? 'small limit' : '64 KiB limit'}, chunks of ${g.chunk}): ${JSON.stringify(g.body.toString('latin1'))}`
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const A = fc.constantFrom
const latin1 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')

/** Requests whose credentials are drawn from `secret`. */
function requestsWith (secret: fc.Arbitrary<string>): fc.Arbitrary<GenRequest> {
  const methodWord = A('DELETE', 'delete', 'Delete', 'PUT', 'put', 'PATCH', 'GET', 'HEAD', 'head', 'OPTIONS', 'LINK', 'unlink',
    'POST', 'poſt', 'optıons', 'lınk', 'bogus', '', 'DELETE ', 'DELETE, PUT', ' delete')
  const value = fc.oneof(
    { weight: 6, arbitrary: secret },
    { weight: 2, arbitrary: methodWord },
    { weight: 2, arbitrary: A('main', 'v1.0', 'x y', '', 'a=b', 'a&b', 'glcbt-', '%zz') }
  )
  const baseName = A('job_token', 'job_token', 'token', 'access_token', 'bearer_token', 'private_token', '_method', '_method', 'ref', 'note', 'JOB_TOKEN')
  /** How Rack's parameter-name reading is stretched: brackets, spaces, escapes. */
  const decorated = fc.tuple(baseName, fc.nat({ max: 13 })).map(([n, d]): string => {
    switch (d) {
      case 0: return `${n}[]`
      case 1: return `${n}[x]`
      case 2: return `[${n}]`
      case 3: return `[]${n}`
      case 4: return ` ${n}`
      case 5: return `${n}]`
      case 6: return `${n}[`
      case 7: return `${n} `
      default: return n
    }
  })

  /** Percent-encodes a form component the ways clients do (or do not). */
  function encodeComponent (s: string, how: number): string {
    switch (how) {
      case 0: return encodeURIComponent(s)
      case 1: return [...Buffer.from(s, 'utf8')].map(b => '%' + b.toString(16).padStart(2, '0')).join('')
      case 2: return encodeURIComponent(s).replaceAll('%20', '+').replaceAll('_', '%5F')
      case 3: return encodeURIComponent(s).replaceAll('_', '%5f')
      default: return s.replace(/[^\x21-\x7e]/gu, c => encodeURIComponent(c)).replaceAll('#', '%23')
    }
  }

  const pair = fc.record({ name: decorated, value, nameEnc: fc.nat({ max: 6 }), valueEnc: fc.nat({ max: 6 }), sep: A('&', '&', '&', ';', '& ', '&&', '; ') })
    .map(p => ({ text: `${encodeComponent(p.name, p.nameEnc)}=${encodeComponent(p.value, p.valueEnc)}`, sep: p.sep }))
  const pairs = fc.array(pair, { maxLength: 4 }).map(ps => ps.map((p, i) => (i === 0 ? '' : p.sep) + p.text).join(''))
  /** A request target cannot hold spaces or raw non-ASCII. */
  const queryString = pairs.map(q => q.replace(/[^\x21-\x7e]/g, c => encodeURIComponent(c)))

  // JSON bodies: repeated keys, escapes in keys, nested values.
  const jsonKey = A('job_token', 'token', 'access_token', 'bearer_token', 'private_token', '_method', 'ref', 'job\\u005ftoken', 'JOB_TOKEN')
  const jsonValue = fc.oneof(
    secret.map(s => JSON.stringify(s)),
    secret.map(s => `[${JSON.stringify(s)}]`),
    secret.map(s => `{"a": ${JSON.stringify(s)}}`),
    A('null', '1', 'true', '""', '{}', '"DELETE"')
  )
  const jsonBody = fc.tuple(fc.array(fc.tuple(jsonKey, jsonValue), { maxLength: 4 }), A(' ', '', '\n  '), fc.nat({ max: 9 }))
    .map(([members, ws, shape]) => {
      const object = `{${ws}${members.map(([k, v]) => `"${k}":${ws}${v}`).join(`,${ws}`)}${ws}}`
      return shape === 0 ? `[${object}]` : object
    })

  // Multipart bodies: part headers in every shape Rack, Rack 3 and Go read differently.
  const boundaryArb = A('XyZ', '------------------------d74496d66958873e', '----WebKitFormBoundary7MA4YWxkTrZu0gW', 'b=1', "q'()+_-./:=?z", 'AaB03x')
  const partName = fc.oneof({ weight: 3, arbitrary: baseName }, { weight: 1, arbitrary: decorated })
  const fileName = A('a.txt', '', 'job_token', 'token.txt', 'x"y')
  const pct = (s: string): string => [...Buffer.from(s, 'utf8')].map(b => '%' + b.toString(16).padStart(2, '0')).join('')
  const headerTemplates: Array<(n: string, f: string) => string> = [
    (n) => `Content-Disposition: form-data; name="${n}"`,
    (n) => `Content-Disposition: form-data; name="${n}"`,
    (n) => `Content-Disposition: form-data; name=${n}`,
    (n) => `content-disposition: form-data; NAME="${n}"`,
    (n) => `Content-Disposition: form-data; name*=utf-8''${pct(n)}`,
    (n, f) => `Content-Disposition: form-data; name="${n}"; filename="${f}"`,
    (n, f) => `Content-Disposition: form-data; filename="${f}"; name="${n}"`,
    (_, f) => `Content-Disposition: form-data; filename="${f}"`,
    (_, f) => `Content-Disposition: attachment; filename*=UTF-8''${pct(f)}`,
    () => 'Content-Disposition: form-data',
    (n) => `Content-Disposition:form-data;name="${n}"`,
    (n) => `Content-Disposition: form-data; name="${n}"; filename=""`,
    (n) => `Content-Disposition: form-data; name="x\\"; name=${n}`,
    (n) => `Content-Disposition: form-data; name="${n.replace('_', '\\_')}"`,
    (n) => `Content-ID: ${n}`,
    (n) => `Content-ID: <${n}>`,
    (n) => `Content-Id:${n}`,
    (n) => `Content-Type: ${n}`,
    () => 'Content-Type: text/plain',
    () => 'Content-Type: text/plain; charset=utf-8',
    () => 'Content-Type: application/octet-stream',
    () => 'X-Note: filename=a',
    (_, f) => `X-Note: a; filename="${f}"`,
    (n) => `X-Note: a; name="${n}"`,
    (n) => `X-Content-Disposition: form-data; name="${n}"`,
    (n) => ` ; name="${n}"`,
    (n) => `Content-Disposition: form-data; name=${n}/x`,
    (n) => `Content-Disposition: form-data;\r\n\tname="${n}"`,
    (n) => `Content-Type: ${n}; charset=utf-8`
  ]
  const headerLine = fc.tuple(partName, fileName, fc.nat({ max: headerTemplates.length - 1 })).map(([n, f, i]) => headerTemplates[i]!(n, f))
  const partValue = fc.oneof(
    { weight: 36, arbitrary: secret },
    { weight: 12, arbitrary: methodWord },
    { weight: 6, arbitrary: A('main', '', 'binary\x00\xff data', `${JOB_A}\r\nmore`) },
    // A value that reads as a header block where a parser runs the head on.
    { weight: 4, arbitrary: fc.tuple(secret, A('Content-ID: job_token', 'Content-Disposition: form-data; name="token"', 'Content-Type: job_token')).map(([v, h]) => `${h}\r\n\r\n${v}`) },
    // A file part larger than what the scanner keeps of a part, and one larger than a token.
    { weight: 1, arbitrary: A(48_000, 9_000).map(n => 'x'.repeat(n)) }
  )
  const part = fc.record({
    lines: fc.array(headerLine, { maxLength: 4 }),
    eol: A('\r\n', '\r\n', '\r\n', '\n'),
    value: partValue,
    before: A('\r\n', '\r\n', '\r\n', '\r\n', '\n', ''),
    after: A('\r\n', '\r\n', '\r\n', '\r\n', '\n', '  \r\n', '--\r\n')
  })
  const multipartBody = fc.record({
    boundary: boundaryArb,
    preamble: A('', '', '', 'preamble\r\n', '\r\n', 'junk'),
    parts: fc.array(part, { minLength: 1, maxLength: 4 }),
    closing: A('\r\n--B--\r\n', '\r\n--B--\r\n', '\r\n--B--', '\r\n--B--\r\nepilogue', '--B--\r\n', '', '\r\n--B--\r\n--B\r\nContent-Disposition: form-data; name="job_token"\r\n\r\nTOKEN\r\n--B--\r\n'),
    closingToken: secret,
    type: A('multipart/form-data; boundary=B', 'multipart/form-data; boundary=B', 'multipart/form-data; boundary="B"', 'multipart/mixed; boundary=B',
      'multipart/related; boundary=B', 'multipart/alternative; boundary=B', 'Multipart/Form-Data; charset=utf-8; boundary=B')
  }).map(m => {
    const b = m.boundary
    let text = m.preamble
    m.parts.forEach((p, i) => {
      text += `${i === 0 ? '' : p.before}--${b}${p.after}${p.lines.map(l => l + p.eol).join('')}${p.eol}${p.value}`
    })
    text += m.closing.replaceAll('B', b).replace('TOKEN', m.closingToken)
    return { contentType: m.type.replace('B', b), body: text }
  })

  // Headers
  const tokenHeader = fc.tuple(A('JOB-TOKEN', 'job-token', 'Job_Token', 'JOB_TOKEN', 'PRIVATE-TOKEN', 'private_token', 'Deploy-Token', 'DEPLOY_TOKEN', 'X-NuGet-ApiKey'), secret)
    .map(([n, v]): Array<[string, string]> => [[n, v]])
  const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64')
  const basicAuth = fc.record({
    user: A('gitlab-ci-token', 'gitlab-ci-token', 'someone', '', 'GITLAB-CI-TOKEN', 'SECRET'),
    secret,
    // Other first words: Basic to TokenLocator on the routes that declare `authenticate_with`.
    scheme: A('Basic ', 'Basic ', 'basic ', 'BASIC ', 'Basic  ', 'Basic\t', 'Foo ', 'Bearer ', 'Token\t', 'Basic,', 'x,y, '),
    shape: fc.nat({ max: 10 }),
    at: fc.nat(),
    junk: A('-', '_', ' ', '.', '!', '=', '\t', '*', ',')
  }).map(({ user, secret, scheme, shape, at, junk }): Array<[string, string]> => {
    const plain = `${user === 'SECRET' ? secret : user}:${secret}`
    const std = b64(plain)
    const k = at % (std.length + 1)
    switch (shape) {
      case 0: return [['Authorization', scheme + std.replace(/=+$/, '')]]
      case 1: return [['Authorization', scheme + std.replaceAll('+', '-').replaceAll('/', '_')]]
      case 2: return [['Authorization', scheme + std.slice(0, k) + junk + std.slice(k)]]
      case 3: return [['Authorization', scheme + junk + std]]
      // Two Authorization lines: Puma joins them with ", ", and decode64 reads through it.
      case 4: return [['Authorization', scheme + std.slice(0, k)], ['Authorization', std.slice(k)]]
      case 5: {
        const cut = at % (plain.length + 1)
        return [['Authorization', scheme + b64(plain.slice(0, cut)) + b64(plain.slice(cut))]]
      }
      case 6: return [['Authorization', scheme + std], ['Authorization', `Bearer ${secret}`]]
      // Gitlab::Jira::Middleware (with a Jira DVCS User-Agent) makes the first `token` `Bearer`:
      // decode64 stops at this `=` (a group's fourth character), and skips it after the rewrite.
      case 7: return [['User-Agent', 'Jira DVCS Connector Vertigo/5.0.0'], ['Authorization', `${scheme}tokenAA=${std}`]]
      default: return [['Authorization', scheme + std]]
    }
  })
  const bearerAuth = fc.tuple(A('Bearer ', 'bearer ', 'BEARER ', 'Bearer  ', 'Bearer\t', 'Token ', 'token ', ''), secret)
    .map(([scheme, s]): Array<[string, string]> => [['Authorization', scheme + s]])
  const overrideHeader = fc.tuple(A('X-HTTP-Method-Override', 'x-http-method-override', 'X_HTTP_METHOD_OVERRIDE'), methodWord)
    .map(([n, v]): Array<[string, string]> => [[n, latin1(v)]])
  const connectionHeader = A('close', 'keep-alive', 'x-trace', 'job-token', 'JOB_TOKEN', 'Authorization', 'x-http-method-override', 'content-type', 'te, close')
    .map((v): Array<[string, string]> => [['Connection', v]])
  const noiseHeader = A<Array<[string, string]>>([['Accept', '*/*']], [['X-Request-Id', 'abc']], [['User-Agent', 'curl/8.5.0']],
    [['User-Agent', 'Jira DVCS Connector Vertigo/5.0.0']], [['User_Agent', 'JIRA DVCS Connector']])
  const headersArb = fc.array(fc.oneof(
    { weight: 3, arbitrary: tokenHeader },
    { weight: 3, arbitrary: basicAuth },
    { weight: 2, arbitrary: bearerAuth },
    { weight: 3, arbitrary: overrideHeader },
    { weight: 1, arbitrary: connectionHeader },
    { weight: 2, arbitrary: noiseHeader }
  ), { maxLength: 3 }).map(hs => hs.flat())

  const bodyArb = fc.oneof(
    { weight: 2, arbitrary: fc.constant({ contentType: null as string | null, body: '' }) },
    { weight: 3, arbitrary: fc.tuple(pairs, A('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8', 'APPLICATION/X-WWW-FORM-URLENCODED', null, ''))
      .map(([body, contentType]) => ({ contentType, body })) },
    { weight: 2, arbitrary: fc.tuple(jsonBody, A('application/json', 'application/json; charset=utf-8', 'application/vnd.api+json', 'text/x-json'))
      .map(([body, contentType]) => ({ contentType, body })) },
    { weight: 5, arbitrary: multipartBody },
    { weight: 1, arbitrary: pairs.map(body => ({ contentType: 'application/octet-stream' as string | null, body })) }
  )

  const PATHS = [
    '/api/v4/projects/42/deployments/7', '/api/v4/projects/42/releases/v1.0', '/api/v4/projects/42/packages/123',
    '/api/v4/projects/42/packages/pypi', '/api/v4/projects/42/releases', '/api/v4/job', '/api/v4/projects/42/packages/conan/v1/users/authenticate',
    '/acme/app.git/info/refs', '/-/jobs/7', ...AUTHENTICATE_WITH_PATHS
  ]

  return fc.record({
    method: fc.oneof({ weight: 12, arbitrary: fc.constant('POST') }, { weight: 4, arbitrary: A('GET', 'PUT', 'DELETE', 'PATCH', 'HEAD') }),
    path: A(...PATHS),
    query: fc.oneof({ weight: 2, arbitrary: fc.constant('') }, { weight: 1, arbitrary: queryString }),
    headers: headersArb,
    body: bodyArb,
    framing: A('length', 'length', 'chunked'),
    small: fc.boolean(),
    chunk: A(1, 7, 64, 1000, 1 << 20)
  }).map(r => {
    const body = Buffer.from(r.body.body, 'utf8')
    const all = r.body.contentType === null ? r.headers : [...r.headers, ['Content-Type', r.body.contentType] as [string, string]]
    // Node (llhttp) and Puma both trim a header value's surrounding spaces and tabs.
    const headers = all.map(([n, v]) => [n, v.replace(/^[ \t]+|[ \t]+$/g, '')] as [string, string])
    // The small limit makes a multipart body stream; a form or JSON body would only be refused.
    const small = r.small && (r.body.contentType ?? '').toLowerCase().startsWith('multipart/')
    return { method: r.method, path: r.path, query: r.query, headers, body, framing: r.framing, small, chunk: r.chunk }
  })
}

const SECRETS = [JOB_A, JOB_B, JOB_JWT, LEGACY, PAT, TRIGGER]
const bySecrets = new Map<string, fc.Arbitrary<GenRequest>>()
/**
 * Mostly one secret per request, repeated in several places, and sometimes a second one: a
 * request with two different credentials is refused as ambiguous, and tells little.
 */
export const requestArb: fc.Arbitrary<GenRequest> = fc.tuple(A(...SECRETS), A(...SECRETS)).chain(([main, other]) => {
  const key = `${main} ${other}`
  let arb = bySecrets.get(key)
  if (arb === undefined) {
    arb = requestsWith(fc.oneof({ weight: 5, arbitrary: fc.constant(main) }, { weight: 1, arbitrary: fc.constant(other) }))
    bySecrets.set(key, arb)
  }
  return arb
})

// ---------------------------------------------------------------------------------------------
// The gate's side

export type GateVerdict =
  | { readonly kind: 'refused', readonly code: string }
  | { readonly kind: 'passed', readonly token: string | null, readonly method: string }

const KNOWN = { [JOB_A]: identityFor(1), [JOB_B]: identityFor(2), [JOB_JWT]: identityFor(3), [LEGACY]: identityFor(4) }

export interface GateUnderTest {
  run (g: GenRequest): Promise<GateVerdict>
}

/** The method Grape routes: HEAD is served by the GET route (canonical.ts does the same). */
export const routedAs = (method: string): string => method === 'HEAD' ? 'GET' : method

export function gateUnderTest (): GateUnderTest {
  const router = catalogRouter()
  const stages: Record<'small' | 'large', IdentityStage> = {
    small: createIdentityStage({ resolver: stubResolver(KNOWN), body: { maxBytes: 48 } }),
    large: createIdentityStage({ resolver: stubResolver(KNOWN) })
  }
  return {
    async run (g) {
      const lines = headerLines(g)
      const headers = nodeHeaders(lines)
      const canonical = canonicalize(g.method, target(g))
      if (canonical.kind === 'rejected') return { kind: 'refused', code: canonical.code }
      if (connectionDropsDecisionHeader(headers.connection, CREDENTIAL_HEADERS) !== null) return { kind: 'refused', code: 'CONNECTION_DROPS_DECISION_HEADER' }
      const match = canonical.kind === 'api' ? router.match(canonical.method, canonical.apiPath) : null
      let method = canonical.method
      // As pipeline.ts does: on API paths the route is matched again with the method Rack routes.
      const methodOverride = canonical.kind === 'api'
        ? (m: string): CatalogRoute | null => {
            method = routedAs(m)
            return router.match(method, canonical.apiPath)?.route ?? null
          }
        : undefined
      // At most 256 chunks: byte-sized chunks for small bodies, larger ones for large bodies.
      const size = Math.max(g.chunk, Math.ceil(g.body.length / 256))
      const chunks: Buffer[] = []
      for (let i = 0; i < g.body.length; i += size) chunks.push(g.body.subarray(i, i + size))
      const outcome = await stages[g.small ? 'small' : 'large'].run({
        canonical, route: match?.route ?? null, headers, rawHeaders: lines.flat(), body: Readable.from(chunks),
        ...(methodOverride === undefined ? {} : { methodOverride })
      })
      if (outcome.kind === 'deny') return { kind: 'refused', code: outcome.code }
      if (outcome.body.kind === 'stream' && outcome.body.guarded) {
        try {
          for await (const _ of outcome.body.stream) { /* drain */ }
        } catch (err) {
          return { kind: 'refused', code: err instanceof IdentityError ? err.code : String(err) }
        }
      }
      return { kind: 'passed', token: outcome.kind === 'job' ? outcome.token : null, method }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The comparison

/** The job tokens among what Rack read: any glcbt- token GitLab reads, and LEGACY where GitLab takes any value. */
export function jobTokensRackReads (g: GenRequest, answer: OracleAnswer): Array<readonly [string, string]> {
  // The Conan route (a GET) takes Basic credentials under any user name.
  const conan = g.path.includes('/conan/') && routedAs(answer.method) === 'GET'
  const anyScheme = AUTHENTICATE_WITH_PATHS.has(g.path)
  return answer.creds.filter(([where, v]) => where !== 'basic-user' && (anyScheme || !where.startsWith('basic-any:')) &&
    (PREFIXED.has(v) || (v === LEGACY && (ALWAYS_JOB.has(where) || (conan && where.startsWith('basic:'))))))
}

/** Null when the gate agrees with Rack (or refused), else what differs. */
export function disagreement (g: GenRequest, answer: OracleAnswer, verdict: GateVerdict): string | null {
  if (verdict.kind === 'refused') return null
  const missed = jobTokensRackReads(g, answer).filter(([, v]) => v !== verdict.token)
  if (missed.length > 0) {
    return `Rack reads job token(s) ${missed.map(([w, v]) => `${v} at ${w}`).join(', ')}; the gate ${verdict.token === null ? 'found none' : `decided on ${verdict.token}`} and passed the request`
  }
  if (g.path.startsWith('/api/') && routedAs(answer.method) !== verdict.method) {
    return `Rack routes ${answer.method}, the gate decided on ${verdict.method}`
  }
  return null
}

export interface DifferentialReport {
  readonly runs: number
  readonly seed: number
  readonly ms: number
  /** Requests in which Rack read a job token. */
  readonly withJobToken: number
  /** How the gate ended the requests: `passed` (with or without a token) or the refusal code. */
  readonly outcomes: Readonly<Record<string, number>>
  /** Requests Rack routed as another method than the one sent. */
  readonly overridden: number
}

/**
 * Runs `runs` generated requests through both, in `lanes` fast-check runs side by side (lane i
 * has seed `seed + i`), so Ruby parses one request while Node runs the gate on another. Throws
 * fast-check's report of the first lane that failed, with the command that replays that lane.
 */
export async function runDifferential (oracle: RackOracle, runs: number, seed: number, lanes = 4, log: (line: string) => void = console.log): Promise<DifferentialReport> {
  const gate = gateUnderTest()
  log(`rack differential: ${runs} requests in ${lanes} lane(s), seed ${seed} (Rack ${oracle.release}); reproduce with RACK_SEED=${seed} RACK_RUNS=${runs} RACK_LANES=${lanes}`)
  const started = performance.now()
  const outcomes: Record<string, number> = {}
  let withJobToken = 0
  let overridden = 0
  const property = fc.asyncProperty(requestArb, async (g) => {
    const [answer, verdict] = await Promise.all([oracle.ask(oracleRequest(g)), gate.run(g)])
    const problem = disagreement(g, answer, verdict)
    if (problem !== null) throw new Error(`${problem}\n${describe(g)}\nRack: ${JSON.stringify(answer)}`)
    const outcome = verdict.kind === 'passed' ? (verdict.token === null ? 'passed' : 'passed with a job token') : verdict.code
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
    if (jobTokensRackReads(g, answer).length > 0) withJobToken++
    if (answer.method !== g.method) overridden++
  })
  const results = await Promise.allSettled(Array.from({ length: lanes }, async (_, i) => {
    const laneRuns = Math.floor(runs / lanes) + (i < runs % lanes ? 1 : 0)
    try {
      await fc.assert(property, { numRuns: laneRuns, seed: seed + i, includeErrorInReport: true })
    } catch (err) {
      throw new Error(`${(err as Error).message}\nReplay this lane: RACK_SEED=${seed + i} RACK_RUNS=${laneRuns} RACK_LANES=1`)
    }
  }))
  const failed = results.find(r => r.status === 'rejected')
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
  return { runs, seed, ms: performance.now() - started, withJobToken, outcomes, overridden }
}

/** RACK_SEED or a fresh seed; RACK_RUNS or the default count; RACK_LANES or 4. */
export function differentialSettings (defaultRuns: number): { runs: number, seed: number, lanes: number } {
  const seed = process.env.RACK_SEED === undefined ? (Date.now() ^ (process.pid << 16)) & 0x3fffffff : Number(process.env.RACK_SEED)
  const runs = process.env.RACK_RUNS === undefined ? defaultRuns : Number(process.env.RACK_RUNS)
  const lanes = process.env.RACK_LANES === undefined ? 4 : Number(process.env.RACK_LANES)
  if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(runs) || runs <= 0 || !Number.isSafeInteger(lanes) || lanes <= 0) {
    throw new Error('RACK_SEED, RACK_RUNS and RACK_LANES must be integers (runs and lanes positive)')
  }
  return { runs, seed, lanes }
}
