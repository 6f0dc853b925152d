// Guarantee 7 (docs/security.md), over generated tokens: a distinct random token is sent in every
// place GitLab reads a credential from (headers in their spellings, Authorization's schemes and
// Basic under any user, the query, form, JSON and multipart bodies, the package managers' own
// places, cookies, GraphQL's documents and variables), in places no credential belongs (a path,
// Referer, X-Forwarded-*, X-Request-Id, a forward-auth check's original request, the
// configuration API's bodies) and in requests the gate refuses (framing Node's parser refuses,
// bodies over the limits, JSON that does not parse) or GitLab fails (an error, a reset, a
// timeout). Then everything the gate wrote is searched for any 8 characters of each token's
// random part, in any case, and for its percent-encoding and its base64 (as Basic carries it):
// every log line at level trace (the decision log, the audit trail), whatever reached the
// process's stdout and stderr, every answer's status line, headers and body (forward-auth's
// headers included), /metrics, the health checks, the least-privilege report and the audit
// events the configuration API answers.
//
// A token of no recognisable shape is sent in the path too (GitLab's own logs write a path as
// sent, so does the gate: docs/security.md, guarantee 7); only token-shaped ones are searched for
// there.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { startTestGate, type TestGate } from '../helpers/gate.ts'
import { send, type RawResponse } from '../helpers/http.ts'
import { ADMIN, USERS } from '../helpers/admin-gate.ts'
import { SCHEMA_FIXTURE } from '../helpers/graphql-gate.ts'
import { propertyRun } from '../helpers/property-run.ts'

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const SHAPES = ['glcbt', 'prefixed', 'glpat', 'gldt', 'jwt', 'opaque'] as const
type Shape = typeof SHAPES[number]
/** Shapes the log recognises in a path (docs/security.md, guarantee 7). */
const RECOGNISED: readonly Shape[] = ['glcbt', 'prefixed', 'glpat', 'gldt', 'jwt']
/**
 * Tokens pasted into client text the gate names back (a configuration API field, a GraphQL
 * document's path or operation name): written `[token]` when recognisable, as in a path.
 */
const TEXT = RECOGNISED

interface Token { readonly shape: Shape, readonly random: string, readonly text: string }

const b64url = (text: string): string => Buffer.from(text).toString('base64url')
const b64 = (text: string): string => Buffer.from(text).toString('base64')

function tokenOf (shape: Shape, random: string, prefix: string): Token {
  const text = shape === 'glcbt'
    ? `glcbt-64_${random}`
    : shape === 'prefixed'
      ? `${prefix}-glcbt-${random}`
      : shape === 'glpat' || shape === 'gldt'
        ? `${shape}-${random}`
        : shape === 'jwt'
          ? `${b64url('{"alg":"RS256","typ":"JWT"}')}.${b64url(JSON.stringify({ sub: `job_${random}` }))}.${random}`
          : random
  return { shape, random, text }
}

const tokenArb = (shapes: readonly Shape[]): fc.Arbitrary<Token> => fc.record({
  shape: fc.constantFrom(...shapes),
  random: fc.array(fc.constantFrom(...ALNUM), { minLength: 20, maxLength: 36 }).map(cs => cs.join('')),
  prefix: fc.constantFrom('acme', 'x~y', 'ACME_1')
}).map(r => tokenOf(r.shape, r.random, r.prefix))

/** An HS256-looking JWT whose payload holds `claims` (the gate reads it unverified, as GitLab's helpers hand it on). */
const jwtWith = (claims: Record<string, unknown>): string => `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(JSON.stringify(claims))}.c2lnbmF0dXJl`

// ---------------------------------------------------------------------------------------------
// Searching: every 8-character window of a token's random part, its percent-encoding (once and
// twice), and its
// base64 at the three alignments (the text before it shifts the groups), lower-cased.

class Needles {
  private readonly byLength = new Map<number, Map<string, string>>()
  add (token: Token, where: string): void {
    const r = token.random
    const add = (text: string, width: number): void => {
      let m = this.byLength.get(width)
      if (m === undefined) this.byLength.set(width, m = new Map())
      const lower = text.toLowerCase()
      for (let i = 0; i + width <= lower.length; i++) m.set(lower.slice(i, i + width), `${where} (${token.text})`)
    }
    add(r, 8)
    add([...r].map(c => '%' + c.charCodeAt(0).toString(16)).join(''), 24)
    add([...r].map(c => '%25' + c.charCodeAt(0).toString(16)).join(''), 40)
    for (const pad of ['', 'x', 'xx']) {
      for (const enc of [b64(pad + r), b64url(pad + r)]) add(enc.slice(4, -4), 12)
    }
  }

  /** Where `text` holds a needle: `[sent where, the output's text around it]`. */
  find (text: string): Array<[string, string]> {
    const lower = text.toLowerCase()
    const hits: Array<[string, string]> = []
    for (const [width, m] of this.byLength) {
      for (let i = 0; i + width <= lower.length; i++) {
        const where = m.get(lower.slice(i, i + width))
        if (where !== undefined) {
          hits.push([where, text.slice(Math.max(0, i - 80), i + width + 80)])
          i += width
        }
      }
    }
    return hits
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

type Upstream = 'ok' | 'error' | 'reset' | 'slow'
/**
 * How GitLab answers a forwarded request: mostly well, else an error or a reset. Too late (the
 * gate gives up after its headers timeout, whose timer ticks by the second) only where a request
 * asks for it, for time.
 */
const UPSTREAM: fc.Arbitrary<Upstream> = fc.oneof(
  { arbitrary: fc.constant('ok' as const), weight: 8 },
  { arbitrary: fc.constant('error' as const), weight: 1 },
  { arbitrary: fc.constant('reset' as const), weight: 1 }
)
interface Req {
  readonly name: string
  readonly listener?: 'api' | 'auth'
  readonly method?: string
  readonly path: string
  readonly headers?: Record<string, string | string[]>
  readonly body?: string | Buffer
  /** Bytes written on a socket as they are (framing Node's parser refuses). */
  readonly raw?: string
  /** How GitLab answers it; default drawn (UPSTREAM). */
  readonly upstream?: Upstream
}

/**
 * Draws a fresh token of one of `shapes` and notes where it was sent. `searched` false: a GraphQL
 * name (a field, an alias), which the gate names as the document has it; no token of a
 * recognisable shape is a GraphQL name (`-` and `.` are no name's characters).
 */
type Draw = ((shapes?: readonly Shape[], searched?: boolean) => string) & {
  /** A fresh job token of a job GitLab runs in acme/platform/app (100). */
  readonly job: () => string
}

const BOUNDARY = 'leakBoundary7'
const multipart = (parts: Array<{ headers: string[], body: string }>): string =>
  parts.map(p => `--${BOUNDARY}\r\n${p.headers.join('\r\n')}\r\n\r\n${p.body}\r\n`).join('') + `--${BOUNDARY}--\r\n`
const MP = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }
const JSON_TYPE = { 'content-type': 'application/json' }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const pct = (s: string): string => [...s].map(c => '%' + c.charCodeAt(0).toString(16).toUpperCase()).join('')
const PKG = '/api/v4/projects/200/packages'
const FINE = 'glpat-finegrainedtoken00001'

/** Every place a token is sent, one request each. */
const LOCATIONS: ReadonlyArray<(t: Draw) => Req> = [
  // Headers GitLab reads, in Rack's spellings.
  t => ({ name: 'JOB-TOKEN', path: PKG, headers: { 'JOB-TOKEN': t() } }),
  t => ({ name: 'Job_Token', path: PKG, headers: { Job_Token: t() } }),
  t => ({ name: 'PRIVATE-TOKEN', path: PKG, headers: { 'private-token': t() } }),
  t => ({ name: 'private_token header', path: '/api/v4/projects/200/variables', headers: { private_token: t() } }),
  t => ({ name: 'Deploy-Token', path: PKG, headers: { 'deploy-token': t() } }),
  t => ({ name: 'X-NuGet-ApiKey', method: 'PUT', path: '/api/v4/projects/200/packages/nuget', headers: { 'x-nuget-apikey': t() } }),
  t => ({ name: 'JOB-TOKEN, GitLab too slow', path: PKG, headers: { 'job-token': t.job() }, upstream: 'slow' }),
  t => ({ name: 'query job_token, GitLab resets', path: `${PKG}?job_token=${t.job()}`, upstream: 'reset' }),
  t => ({ name: 'Basic, GitLab fails', path: '/api/v4/projects/100/packages/maven/com/acme/app/1.0/app-1.0.jar', headers: { authorization: `Basic ${b64(`gitlab-ci-token:${t.job()}`)}` }, upstream: 'error' }),
  t => ({ name: 'repeated JOB-TOKEN', path: PKG, headers: { 'job-token': [t(), t()] } }),
  // Authorization, every scheme and spelling.
  t => ({ name: 'Bearer', path: PKG, headers: { authorization: `Bearer ${t()}` } }),
  t => ({ name: 'bearer, tab', path: PKG, headers: { authorization: `bearer\t${t()}` } }),
  t => ({ name: 'Token scheme', path: PKG, headers: { authorization: `Token ${t()}` } }),
  t => ({ name: 'bare Authorization', path: PKG, headers: { authorization: t() } }),
  t => ({ name: 'Basic gitlab-ci-token', path: '/api/v4/projects/200/packages/maven/com/acme/app/1.0/app-1.0.jar', headers: { authorization: `Basic ${b64(`gitlab-ci-token:${t()}`)}` } }),
  t => ({ name: 'basic other user', path: '/api/v4/projects/200/packages/pypi/simple/foo', headers: { authorization: `basic ${b64(`someone:${t()}`)}` } }),
  t => ({ name: 'Basic token as user', path: PKG, headers: { authorization: `Basic ${b64(`${t()}:x`)}` } }),
  t => ({ name: 'Basic without colon', path: PKG, headers: { authorization: `Basic ${b64(t())}` } }),
  t => ({ name: 'Basic, Envoy join (Helm)', path: '/api/v4/projects/200/packages/helm/stable/index.yaml', headers: { authorization: `Basic,${b64(`u:${t()}`)}` } }),
  t => ({ name: 'Bearer base64 (NuGet, any scheme)', path: '/api/v4/projects/200/packages/nuget/index.json', headers: { authorization: `Bearer ${b64(`gitlab-ci-token:${t()}`)}` } }),
  t => ({ name: 'BASIC, base64url, no padding', path: PKG, headers: { authorization: `BASIC  ${b64url(`gitlab-ci-token:${t()}`)}` } }),
  t => ({ name: 'Conan Bearer Basic', path: '/api/v4/packages/conan/v1/conans/pkg/1.0/acme+lib/stable', headers: { authorization: `Bearer Basic ${b64(`x:${t()}`)}` } }),
  t => ({ name: 'Negotiate', path: PKG, headers: { authorization: `Negotiate ${t()}` } }),
  t => ({ name: 'two Authorization lines', path: PKG, headers: { authorization: [`Bearer ${t()}`, `Basic ${b64(`gitlab-ci-token:${t()}`)}`] } }),
  t => ({ name: 'Cargo last word', path: '/api/v4/projects/200/packages/cargo/config.json', headers: { authorization: `Foo bar ${t()}` } }),
  t => ({ name: 'Jira DVCS', path: PKG, headers: { 'user-agent': 'Jira DVCS Connector Vertigo/5.0.0', authorization: `token ${t()}` } }),
  t => ({ name: 'Conan Basic', path: '/api/v4/packages/conan/v1/users/authenticate', headers: { authorization: `Basic ${b64(`anyone:${t()}`)}` } }),
  t => ({ name: 'Conan Bearer JWT', path: '/api/v4/packages/conan/v1/conans/pkg/1.0/acme+lib/stable', headers: { authorization: `Bearer ${jwtWith({ access_token: t(['glcbt']) })}` } }),
  t => ({ name: 'Terraform module JWT', path: `/api/v4/packages/terraform/modules/v1/acme/lib/aws/1.0.0/file?token=${jwtWith({ token: t(['glcbt']) })}` }),
  t => ({ name: 'Composer Basic', path: '/api/v4/group/10/-/packages/composer/packages', headers: { authorization: `Basic ${b64(`gitlab-ci-token:${t()}`)}` } }),
  t => ({ name: 'Debian Basic', path: '/api/v4/groups/10/-/debian_distributions/sid', headers: { authorization: `Basic ${b64(`gitlab-ci-token:${t()}`)}` } }),
  t => ({ name: 'npm Bearer', method: 'PUT', path: '/api/v4/projects/200/packages/npm/foo', headers: { authorization: `Bearer ${t()}`, ...JSON_TYPE }, body: '{"name":"foo"}' }),
  t => ({ name: 'RubyGems bare Authorization', method: 'POST', path: '/api/v4/projects/200/packages/rubygems/api/v1/gems', headers: { authorization: t() }, body: 'gem' }),
  t => ({ name: 'Go proxy Basic', path: '/api/v4/projects/200/packages/go/example.com/mod/@v/list', headers: { authorization: `Basic ${b64(`gitlab-ci-token:${t()}`)}` } }),
  t => ({ name: 'session cookie', method: 'DELETE', path: '/api/v4/projects/200/packages/1', headers: { cookie: `_gitlab_session=${t()}`, 'x-csrf-token': t() } }),
  // The query, in Rack's spellings.
  t => ({ name: 'query job_token', path: `${PKG}?job_token=${t()}` }),
  t => ({ name: 'query private_token', path: `/api/v4/projects/200/variables?private_token=${t()}` }),
  t => ({ name: 'query access_token', path: `${PKG}?access_token=${t()}` }),
  t => ({ name: 'query bearer_token', path: `${PKG}?bearer_token=${t()}` }),
  t => ({ name: 'query token', path: `${PKG}?token=${t()}` }),
  t => ({ name: 'query job_token[]', path: `${PKG}?job_token[]=${t()}&x=1` }),
  t => ({ name: 'query escaped name and value', path: `${PKG}?%6Aob_token=${pct(t())}` }),
  t => ({ name: 'query ; and +', path: `${PKG}?a=1;+job_token=${t()}` }),
  t => ({ name: 'query bad escape', path: `${PKG}?job_token=%zz${t()}` }),
  t => ({ name: 'query, refused path', path: `/api/v4/projects/200/%2e%2e/packages?job_token=${t()}` }),
  t => ({ name: 'query, no route', path: `/api/v4/nothing/here?job_token=${t()}` }),
  t => ({ name: 'query, git', path: `/acme/lib.git/info/refs?service=git-upload-pack&job_token=${t()}` }),
  // Bodies.
  t => ({ name: 'form job_token', method: 'POST', path: '/api/v4/projects/200/deployments', headers: FORM, body: `environment=prod&job_token=${t()}` }),
  t => ({ name: 'form private_token, method override', method: 'POST', path: '/api/v4/projects/200/deployments', headers: FORM, body: `_method=PUT&private_token=${t()}` }),
  t => ({ name: 'form bad escape', method: 'POST', path: '/api/v4/projects/200/deployments', headers: FORM, body: `job_token=${t()}%&x=%zz` }),
  t => ({ name: 'JSON job_token', method: 'POST', path: '/api/v4/projects/200/deployments', headers: JSON_TYPE, body: JSON.stringify({ environment: 'prod', job_token: t() }) }),
  t => ({ name: 'JSON nested and repeated', method: 'POST', path: '/api/v4/projects/200/deployments', headers: JSON_TYPE, body: `{"job_token":[${JSON.stringify(t())}],"x":{"private_token":${JSON.stringify(t())}},"job_token":${JSON.stringify(t())}}` }),
  t => ({ name: 'JSON not parseable', method: 'POST', path: '/api/v4/projects/200/deployments', headers: JSON_TYPE, body: `{"job_token":"${t()}` }),
  t => ({ name: 'JSON bad token', method: 'POST', path: '/api/v4/projects/200/deployments', headers: JSON_TYPE, body: `{"job_token": ${t()}}` }),
  t => ({ name: 'JSON too deep', method: 'POST', path: '/api/v4/projects/200/deployments', headers: JSON_TYPE, body: `{"job_token":"${t()}","x":${'['.repeat(600)}${']'.repeat(600)}}` }),
  t => ({ name: 'untyped JSON', method: 'POST', path: '/api/v4/projects/200/deployments', body: JSON.stringify({ job_token: t() }) }),
  t => ({ name: 'multipart job_token', method: 'PUT', path: '/api/v4/projects/200/packages/generic/pkg/1.0/a.txt', headers: MP, body: multipart([{ headers: ['Content-Disposition: form-data; name="job_token"'], body: t() }, { headers: ['Content-Disposition: form-data; name="file"; filename="a.txt"'], body: 'hello' }]) }),
  t => ({ name: 'multipart Content-ID', method: 'POST', path: '/api/v4/projects/200/packages/pypi', headers: MP, body: multipart([{ headers: ['Content-ID: private_token'], body: t() }]) }),
  t => ({ name: 'multipart names', method: 'POST', path: '/api/v4/projects/200/packages/pypi', headers: MP, body: multipart([{ headers: [`Content-Disposition: form-data; name="${t()}"; filename="${t()}"`], body: 'x' }]) }),
  t => ({ name: 'multipart header too long', method: 'POST', path: '/api/v4/projects/200/packages/pypi', headers: MP, body: multipart([{ headers: [`Content-Disposition: form-data; name="job_token"; x="${t()}${'a'.repeat(20_000)}"`], body: t() }]) }),
  t => ({ name: 'multipart unterminated', method: 'POST', path: '/api/v4/projects/200/packages/pypi', headers: MP, body: `--${BOUNDARY}\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n${t()}` }),
  t => ({ name: 'upload operations', method: 'POST', path: '/api/v4/projects/200/packages/pypi', headers: MP, body: multipart([{ headers: ['Content-Disposition: form-data; name="operations"'], body: JSON.stringify({ query: 'x', variables: { job_token: t() } }) }, { headers: ['Content-Disposition: form-data; name="map"'], body: '{}' }]) }),
  t => ({ name: 'body over the limit', method: 'POST', path: '/api/v4/projects/200/deployments', headers: FORM, body: `job_token=${t()}&pad=${'a'.repeat(70_000)}` }),
  // Paths (only tokens of a shape the log recognises: a path is written as sent).
  t => ({ name: 'package name', path: `/api/v4/projects/200/packages/generic/${t(RECOGNISED)}/1.0/a.txt`, headers: { 'job-token': t.job() } }),
  t => ({ name: 'segment after /api/v4', path: `/api/v4/${t(RECOGNISED)}/projects/200` }),
  t => ({ name: 'project id', path: `/api/v4/projects/${t(RECOGNISED)}/packages`, headers: { 'job-token': t.job() } }),
  t => ({ name: 'project path', path: `/api/v4/projects/acme%2F${t(RECOGNISED)}/packages`, headers: { 'job-token': t.job() } }),
  t => ({ name: 'encoded in the path', path: `/api/v4/projects/200/packages/generic/${pct(t(RECOGNISED))}/1.0/a.txt` }),
  t => ({ name: 'encoded twice in the path', path: `/api/v4/projects/200/packages/generic/${pct(t(RECOGNISED)).replaceAll('%', '%25')}/1.0/a.txt`, headers: { 'job-token': t() } }),
  t => ({ name: 'partly encoded twice in the path', path: `/api/v4/projects/200/packages/generic/${t(['glpat', 'gldt', 'glcbt']).replace('g', '%2567')}/1.0/a.txt` }),
  t => ({ name: 'bad escape in the path', path: `/api/v4/projects/200/packages/%zz${t(RECOGNISED)}` }),
  t => ({ name: 'group path', path: `/api/v4/groups/${t(RECOGNISED)}/-/packages/npm/foo`, headers: { 'job-token': t.job() } }),
  t => ({ name: 'npm package name', path: `/api/v4/packages/npm/@acme%2F${t(RECOGNISED)}`, headers: { 'job-token': t() } }),
  t => ({ name: 'repository path', path: `/acme/${t(RECOGNISED)}.git/info/refs?service=git-upload-pack`, headers: { 'job-token': t() } }),
  // Headers no credential belongs in.
  t => ({ name: 'Referer', path: PKG, headers: { referer: `https://gitlab.example/acme/lib?private_token=${t()}` } }),
  t => ({ name: 'X-Forwarded-*', path: PKG, headers: { 'x-forwarded-for': t(), 'x-forwarded-host': t(), 'x-forwarded-uri': `/x?job_token=${t()}`, 'x-forwarded-proto': t(), 'x-original-uri': `/y?job_token=${t()}` } }),
  t => ({ name: 'X-Request-Id', path: PKG, headers: { 'x-request-id': t(RECOGNISED) } }),
  t => ({ name: 'X-Request-Id, refused request', path: `/api/v4/projects/200/%2e%2e/packages?job_token=${t()}`, headers: { 'x-request-id': t(RECOGNISED) } }),
  t => ({ name: 'a header named so', path: PKG, headers: { [`x-${t()}`]: '1' } }),
  t => ({ name: 'Connection naming JOB-TOKEN', path: PKG, headers: { connection: 'job-token', 'job-token': t() } }),
  t => ({ name: 'Expect', method: 'PUT', path: PKG, headers: { expect: t(), 'job-token': t() }, body: 'x' }),
  t => ({ name: 'method override header', method: 'POST', path: PKG, headers: { 'x-http-method-override': t(), 'job-token': t() } }),
  // Framing Node's parser refuses.
  t => ({ name: 'headers too large', path: PKG, raw: `GET ${PKG}?job_token=${t()} HTTP/1.1\r\nHost: x\r\nJOB-TOKEN: ${t()}\r\nX-Pad: ${'a'.repeat(20_000)}${t()}\r\n\r\n` }),
  t => ({ name: 'length and chunked', path: PKG, raw: `POST ${PKG} HTTP/1.1\r\nHost: x\r\nJOB-TOKEN: ${t()}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` }),
  t => ({ name: 'bad chunk size', path: PKG, raw: `POST /api/v4/projects/200/deployments HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n${t()}\r\njob_token=${t()}\r\n0\r\n\r\n` }),
  t => ({ name: 'NUL in a header', path: PKG, raw: `GET ${PKG} HTTP/1.1\r\nHost: x\r\nJOB-TOKEN: ${t()}\u0000${t()}\r\n\r\n` }),
  t => ({ name: 'token as the method', path: PKG, raw: `${t(['glcbt', 'opaque'])} ${PKG} HTTP/1.1\r\nHost: x\r\n\r\n` }),
  t => ({ name: 'space in the target', path: PKG, raw: `GET ${PKG}?job_token=${t()} x HTTP/1.1\r\nHost: x\r\n\r\n` }),
  t => ({ name: 'no Host', path: PKG, raw: `GET ${PKG}?job_token=${t()} HTTP/1.1\r\nJOB-TOKEN: ${t()}\r\n\r\n` }),
  t => ({ name: 'CONNECT', path: PKG, raw: `CONNECT ${t(RECOGNISED)}:443 HTTP/1.1\r\nHost: x\r\nJOB-TOKEN: ${t()}\r\n\r\n` }),
  t => ({ name: 'obs-fold', path: PKG, raw: `GET ${PKG} HTTP/1.1\r\nHost: x\r\nJOB-TOKEN: a\r\n ${t()}\r\n\r\n` }),
  t => ({ name: 'absolute-form with user info', path: PKG, raw: `GET http://gitlab-ci-token:${t()}@gitlab.example${PKG}?x=1 HTTP/1.1\r\nHost: gitlab.example\r\n\r\n` }),
  t => ({ name: 'absolute-form authority', path: PKG, raw: `GET http://${t(['glcbt', 'glpat', 'opaque'])}.example${PKG} HTTP/1.1\r\nHost: x\r\nJOB-TOKEN: ${t()}\r\n\r\n` }),
  t => ({ name: 'Host', path: PKG, headers: { host: `${t(['glcbt', 'glpat', 'opaque'])}.example`, 'job-token': t() } }),
  t => ({ name: 'HTTP/1.0', path: PKG, raw: `GET ${PKG}?private_token=${t()} HTTP/1.0\r\nJOB-TOKEN: ${t()}\r\n\r\n` }),
  t => ({ name: 'Content-Type parameters', method: 'POST', path: '/api/v4/projects/200/packages/pypi', headers: { 'content-type': `multipart/form-data; boundary=${t()}; charset=${t()}` }, body: `--x\r\n\r\n${t()}` }),
  t => ({ name: 'Content-Encoding', method: 'POST', path: '/api/v4/projects/200/deployments', headers: { ...FORM, 'content-encoding': t() }, body: `job_token=${t()}` }),
  t => ({ name: 'charset', method: 'POST', path: '/api/v4/projects/200/deployments', headers: { 'content-type': `application/x-www-form-urlencoded; charset=${t()}` }, body: `job_token=${t()}` }),
  t => ({ name: 'form _method', method: 'POST', path: PKG, headers: FORM, body: `_method=${t()}&job_token=${t()}` }),
  // Forward-auth.
  t => ({ name: 'forward-auth X-Original-URI query', listener: 'auth', path: '/', headers: { 'x-original-method': 'GET', 'x-original-uri': `${PKG}?job_token=${t()}` } }),
  t => ({ name: 'forward-auth JOB-TOKEN', listener: 'auth', path: '/', headers: { 'x-original-method': 'PUT', 'x-original-uri': '/api/v4/projects/200/packages/npm/foo', 'job-token': t() } }),
  t => ({ name: 'forward-auth method', listener: 'auth', path: '/', headers: { 'x-original-method': t(), 'x-original-uri': PKG, 'job-token': t() } }),
  t => ({ name: 'forward-auth X-Original-URL', listener: 'auth', path: '/', headers: { 'x-original-url': `https://gitlab.example/api/v4/projects/200/variables?private_token=${t()}` } }),
  t => ({ name: 'forward-auth bad X-Original-URL', listener: 'auth', path: '/', headers: { 'x-original-url': `ftp://${t()}@gitlab.example/x`, 'job-token': t() } }),
  t => ({ name: 'forward-auth conflict', listener: 'auth', path: '/', headers: { 'x-original-uri': `${PKG}?job_token=${t()}`, 'x-forwarded-uri': `${PKG}?private_token=${t()}` } }),
  t => ({ name: 'forward-auth path', listener: 'auth', path: '/', headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': `/api/v4/projects/200/packages/generic/${t(RECOGNISED)}/1.0/a`, authorization: `Bearer ${t()}` } }),
  t => ({ name: 'forward-auth body', listener: 'auth', method: 'POST', path: '/', headers: { 'x-original-method': 'POST', 'x-original-uri': '/api/v4/projects/200/deployments', ...FORM }, body: `job_token=${t()}` }),
  t => ({ name: 'forward-auth declared length', listener: 'auth', path: '/', headers: { 'x-original-method': 'POST', 'x-original-uri': '/api/v4/projects/200/deployments', 'x-original-content-length': t(), 'x-original-transfer-encoding': t(), 'job-token': t() } }),
  t => ({ name: 'forward-auth fragment', listener: 'auth', path: '/', headers: { 'x-original-method': 'GET', 'x-original-uri': `${PKG}#${t()}`, 'job-token': t() } }),
  t => ({ name: 'forward-auth request line', listener: 'auth', path: `${PKG}?private_token=${t()}`, headers: { 'job-token': t() } }),
  // The configuration API.
  t => ({ name: 'admin: unknown PRIVATE-TOKEN', path: '/api/v4/projects/200/job_token_scope/allowlist', headers: { 'private-token': t() } }),
  t => ({ name: 'admin: Bearer', method: 'POST', path: '/api/v4/projects/200/job_token_scope/allowlist', headers: { authorization: `Bearer ${t()}`, ...JSON_TYPE }, body: '{"target_project_id":300}' }),
  t => ({ name: 'admin: job token', path: '/api/v4/projects/200/job_token_scope', headers: { 'job-token': t() } }),
  t => ({ name: 'admin: query token', path: `/api/v4/projects/200/job_token_permissions?private_token=${t()}` }),
  t => ({ name: 'admin: token in the path', path: `/api/v4/projects/200/job_token_scope/allowlist/${t(RECOGNISED)}`, method: 'DELETE', headers: { 'private-token': ADMIN } }),
  t => ({ name: 'admin: registry path', path: `/api/v4/gate/graphql_token_scopes/${t()}`, method: 'PUT', headers: { 'private-token': ADMIN, ...JSON_TYPE }, body: JSON.stringify({ scopes: t() }) }),
  t => ({ name: 'admin: registry body', path: `/api/v4/gate/graphql_token_scopes/${'ab'.repeat(32)}`, method: 'PUT', headers: { 'private-token': ADMIN, ...JSON_TYPE }, body: JSON.stringify({ [t(TEXT)]: 1, user_id: t(TEXT), granular_scopes: [{ access: t(TEXT), permissions: [t(TEXT)], [t(TEXT)]: 1 }] }) }),
  t => ({ name: 'admin: target id', method: 'POST', path: '/api/v4/projects/200/job_token_scope/allowlist', headers: { 'private-token': ADMIN, ...JSON_TYPE }, body: JSON.stringify({ target_project_id: t(TEXT) }) }),
  t => ({ name: 'admin: group path', method: 'POST', path: '/api/v4/projects/200/job_token_scope/groups_allowlist', headers: { 'private-token': ADMIN, ...JSON_TYPE }, body: JSON.stringify({ target_group_id: 20, full_path: t(TEXT) }) }),
  t => ({ name: 'admin: policies', method: 'POST', path: '/api/v4/projects/200/job_token_scope/allowlist', headers: { 'private-token': USERS.maintainer, ...JSON_TYPE }, body: JSON.stringify({ target_project_id: 300, default_permissions: false, job_token_policies: [t(TEXT)] }) }),
  t => ({ name: 'admin: unknown field', method: 'PATCH', path: '/api/v4/projects/200/job_token_permissions', headers: { 'private-token': ADMIN, ...JSON_TYPE }, body: JSON.stringify({ [t(TEXT)]: true, job_token: t(TEXT) }) }),
  t => ({ name: 'admin: package rules', method: 'PATCH', path: '/api/v4/projects/200/job_token_permissions', headers: { 'private-token': ADMIN, ...JSON_TYPE }, body: JSON.stringify({ package_registry: { [t(TEXT)]: { write: 'maintainer' }, npm: { delete: t(TEXT), [t(TEXT)]: 'x' } } }) }),
  t => ({ name: 'admin: form body', method: 'POST', path: '/api/v4/projects/200/job_token_scope/allowlist', headers: { 'private-token': ADMIN, ...FORM }, body: `target_project_id=300&job_token_policies[]=${t(TEXT)}&private_token=${t()}` }),
  t => ({ name: 'admin: JSON not parseable', method: 'PATCH', path: '/api/v4/projects/200/job_token_permissions', headers: { 'private-token': ADMIN, ...JSON_TYPE }, body: `{"package_registry": ${t(TEXT)}` }),
  t => ({ name: 'admin: inbound scope', method: 'PATCH', path: '/api/v4/projects/200/job_token_scope', headers: { 'private-token': ADMIN, ...JSON_TYPE }, body: JSON.stringify({ enabled: t(TEXT) }) }),
  t => ({ name: 'admin: group policies', method: 'PUT', path: `/api/v4/groups/${t(RECOGNISED)}/job_token_policies`, headers: { 'private-token': ADMIN, ...JSON_TYPE }, body: JSON.stringify({ job_token_policies_enabled: t(TEXT) }) }),
  t => ({ name: 'admin: a change, audited', method: 'PATCH', path: '/api/v4/projects/200/job_token_scope', headers: { 'private-token': ADMIN, ...JSON_TYPE, 'x-request-id': t(RECOGNISED), referer: `https://gitlab.example/?private_token=${t()}`, 'user-agent': t() }, body: '{"enabled":true}' }),
  t => ({ name: 'admin: an entry, audited', method: 'POST', path: `/api/v4/projects/200/job_token_scope/allowlist?private_token=${USERS.maintainer}`, headers: { ...JSON_TYPE, 'x-request-id': t(RECOGNISED) }, body: JSON.stringify({ target_project_id: 300, default_permissions: false, job_token_policies: ['read_packages'] }) }),
  t => ({ name: 'admin: entry removed, audited', method: 'DELETE', path: '/api/v4/projects/200/job_token_scope/allowlist/300', headers: { 'private-token': USERS.maintainer, 'x-forwarded-for': t(), 'x-request-id': t(RECOGNISED) } }),
  // GraphQL.
  t => ({ name: 'GraphQL fullPath', method: 'POST', path: '/api/graphql', headers: { 'private-token': FINE, ...JSON_TYPE }, body: JSON.stringify({ query: `{ project(fullPath: "acme/${t(TEXT)}") { id } }` }) }),
  t => ({ name: 'GraphQL variables', method: 'POST', path: '/api/graphql', headers: { 'private-token': FINE, ...JSON_TYPE }, body: JSON.stringify({ query: 'query($p: ID!) { project(fullPath: $p) { id } }', variables: { p: t(TEXT), job_token: t(TEXT) }, operationName: t(TEXT) }) }),
  t => ({ name: 'GraphQL syntax error', method: 'POST', path: '/api/graphql', headers: { 'private-token': FINE, ...JSON_TYPE }, body: JSON.stringify({ query: `{ project(fullPath: ${t(TEXT)}) { id } }` }) }),
  t => ({ name: 'GraphQL unterminated string', method: 'POST', path: '/api/graphql', headers: { 'private-token': FINE, ...JSON_TYPE }, body: JSON.stringify({ query: `{ project(fullPath: "${t(TEXT)}` }) }),
  t => ({ name: 'GraphQL unknown field', method: 'POST', path: '/api/graphql', headers: { 'private-token': FINE, ...JSON_TYPE }, body: JSON.stringify({ query: `{ project(fullPath: "acme/lib") { f_${t(['opaque'], false)} } }` }) }),
  t => ({ name: 'GraphQL global id', method: 'POST', path: '/api/graphql', headers: { 'private-token': FINE, ...JSON_TYPE }, body: JSON.stringify({ query: `mutation { vulnerabilityConfirm(input: {id: "gid://gitlab/${t(TEXT)}/1"}) { errors } }` }) }),
  t => ({ name: 'GraphQL bad variables', method: 'POST', path: '/api/graphql', headers: { 'private-token': FINE, ...JSON_TYPE }, body: `{"query":"query($p: ID!) { project(fullPath: $p) { id } }","variables":"{\\"p\\": ${t(TEXT)}"}` }),
  t => ({ name: 'GraphQL GET', path: `/api/graphql?query=${encodeURIComponent(`{ project(fullPath: "${t(TEXT)}") { id } }`)}&private_token=${t()}` }),
  t => ({ name: 'GraphQL job token', method: 'POST', path: '/api/graphql', headers: { 'job-token': t(), ...JSON_TYPE }, body: JSON.stringify({ query: '{ currentUser { id } }' }) }),
  t => ({ name: 'GraphQL unknown token', method: 'POST', path: '/api/graphql', headers: { authorization: `Bearer ${t(['glpat'])}`, ...JSON_TYPE }, body: JSON.stringify({ query: '{ project(fullPath: "acme/lib") { id } }' }) }),
  t => ({ name: 'GraphQL Basic', method: 'POST', path: '/api/graphql', headers: { authorization: `Basic ${b64(`someone:${t()}`)}`, ...JSON_TYPE }, body: JSON.stringify({ query: '{ currentUser { id } }' }) }),
  t => ({ name: 'GraphQL body credentials', method: 'POST', path: '/api/graphql', headers: JSON_TYPE, body: JSON.stringify({ query: '{ currentUser { id } }', private_token: t(), access_token: t(), job_token: t() }) }),
  t => ({ name: 'GraphQL form', method: 'POST', path: `/api/graphql?access_token=${t()}`, headers: FORM, body: `query=${encodeURIComponent('{ currentUser { id } }')}&private_token=${t()}` }),
  t => ({ name: 'GraphQL gate mutation', method: 'POST', path: '/api/graphql', headers: { 'private-token': USERS.maintainer, ...JSON_TYPE }, body: JSON.stringify({ query: `mutation { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "${t(TEXT)}", clientMutationId: "${t(TEXT)}"}) { errors } }` }) }),
  t => ({ name: 'GraphQL gate mutation, policies', method: 'POST', path: '/api/graphql', headers: { 'private-token': USERS.maintainer, ...JSON_TYPE }, body: JSON.stringify({ query: 'mutation($i: CiJobTokenScopeAddGroupOrProjectInput!) { ciJobTokenScopeAddGroupOrProject(input: $i) { errors } }', variables: { i: { projectPath: 'acme/lib', targetPath: 'other/tools', defaultPermissions: false, jobTokenPolicies: [t(TEXT)] } } }) }),
  t => ({ name: 'GraphQL gate mutation, bad variables', method: 'POST', path: '/api/graphql', headers: { 'private-token': USERS.maintainer, ...JSON_TYPE }, body: JSON.stringify({ query: 'mutation($i: CiJobTokenScopeAddGroupOrProjectInput!) { ciJobTokenScopeAddGroupOrProject(input: $i) { errors } }', variables: { i: { projectPath: 'acme/lib', targetPath: t(TEXT), [`x${t(['opaque'], false)}`]: t(TEXT), jobTokenPolicies: t(TEXT) } } }) }),
  t => ({ name: 'GraphQL gate mutation, literal of a wrong type', method: 'POST', path: '/api/graphql', headers: { 'private-token': USERS.maintainer, ...JSON_TYPE }, body: JSON.stringify({ query: `mutation { ciJobTokenScopeAddGroupOrProject(input: {projectPath: "acme/lib", targetPath: ["${t(TEXT)}"], defaultPermissions: "${t(TEXT)}"}) { errors } }` }) }),
  t => ({ name: 'GraphQL variables of a wrong type', method: 'POST', path: '/api/graphql', headers: { 'private-token': FINE, ...JSON_TYPE }, body: JSON.stringify({ query: 'query($p: ID!, $n: Int) { project(fullPath: $p) { id } }', variables: { p: { x: t(TEXT) }, n: t(TEXT) } }) }),
  t => ({ name: 'GraphQL gate mutation mixed', method: 'POST', path: '/api/graphql', headers: { 'private-token': USERS.maintainer, ...JSON_TYPE }, body: JSON.stringify({ query: `mutation { ciJobTokenScopeRemoveProject(input: {projectPath: "acme/lib", targetProjectPath: "other/tools"}) { errors } f_${t(['opaque'], false)} }` }) }),
  t => ({ name: 'GraphQL too large', method: 'POST', path: '/api/graphql', headers: { 'private-token': FINE, ...JSON_TYPE }, body: JSON.stringify({ query: `{ project(fullPath: "${t(TEXT)}") { id } }${' '.repeat(41_000)}` }) }),
  t => ({ name: 'GraphQL upload', method: 'POST', path: '/api/graphql', headers: { 'private-token': FINE, ...MP }, body: multipart([{ headers: ['Content-Disposition: form-data; name="operations"'], body: JSON.stringify({ query: `{ project(fullPath: "${t(TEXT)}") { id } }`, variables: { job_token: t(TEXT) } }) }, { headers: ['Content-Disposition: form-data; name="map"'], body: `{"${t(TEXT)}": [1]` }]) })
]

// ---------------------------------------------------------------------------------------------

function sendRaw (base: string, bytes: string): Promise<RawResponse> {
  const url = new URL(base)
  return new Promise(resolve => {
    const socket = connect(Number(url.port), url.hostname)
    const chunks: Buffer[] = []
    const done = (): void => {
      const text = Buffer.concat(chunks).toString('latin1')
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), headers: {}, text, json: () => undefined })
    }
    socket.on('data', c => chunks.push(c))
    socket.on('error', () => { /* reset after the answer */ })
    socket.on('close', done)
    socket.write(bytes, 'latin1')
    socket.end()
  })
}

async function outputs (g: TestGate, auth: string, answers: string[], logsFrom: number, stdio: string[]): Promise<string[]> {
  const texts = [...g.logs.slice(logsFrom).map(l => JSON.stringify(l)), ...answers, ...stdio.splice(0)]
  await g.gate.usage.flush()
  for (const [base, path, headers] of [
    [g.healthUrl, '/metrics', {}], [g.healthUrl, '/-/readiness', {}], [g.healthUrl, '/-/liveness', {}],
    [g.url, '/api/v4/projects/200/job_token_scope/usage', { 'private-token': ADMIN }],
    [g.url, '/api/v4/projects/100/job_token_scope/usage', { 'private-token': ADMIN }],
    [g.url, '/api/v4/projects/200/job_token_permissions/audit_events', { 'private-token': ADMIN }],
    [g.url, '/api/v4/projects/200/job_token_scope/allowlist', { 'private-token': ADMIN }],
    [g.url, '/api/v4/projects/200/job_token_scope/groups_allowlist', { 'private-token': ADMIN }],
    [auth, '/-/readiness', {}]
  ] as const) {
    const res = await send(base, 'GET', path, headers)
    texts.push(`${path}: ${JSON.stringify(res.headers)} ${res.text}`)
  }
  return texts
}

test('no output of the gate holds any part of a token sent anywhere in a request', async (t) => {
  const g = await startTestGate(t, {
    GATE_ADMIN_TOKEN: ADMIN,
    GATE_AUTH_LISTEN: '127.0.0.1:0',
    GATE_LOG_RAW_PATH: 'true',
    GATE_LOG_LEVEL: 'trace',
    GATE_DECISION_LOG_LEVEL: 'trace',
    GATE_GRAPHQL_SCHEMA: fileURLToPath(SCHEMA_FIXTURE),
    GATE_MAX_INSPECTED_BODY_BYTES: '65536',
    GATE_UPSTREAM_HEADERS_TIMEOUT_MS: '150'
  }, {
    logLevel: 'trace',
    users: {
      [USERS.maintainer]: { id: 41, username: 'mia', access: { 200: 40 } }
    },
    accessTokens: {
      [FINE]: { id: 1007, name: 'token', user_id: 7, active: true, revoked: false, scopes: ['granular'], granular: true, granular_scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
    }
  })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  // GitLab's answer as the request asks (x-test-upstream): never an echo of the request.
  g.respond = (req, res) => {
    const how = req.headers['x-test-upstream']
    if (how === 'reset') { res.destroy(); return }
    if (how === 'slow') { setTimeout(() => { if (!res.destroyed) res.end('{}') }, 1500).unref(); return }
    res.writeHead(how === 'error' ? 500 : 200, { 'content-type': 'application/json' })
    res.end(how === 'error' ? '{"message":"500 Internal Server Error"}' : '{"ok":true}')
  }
  // Whatever reaches the process's own stdout and stderr (Node's warnings included).
  const stdio: string[] = []
  const writes = { out: process.stdout.write, err: process.stderr.write }
  const tee = (stream: NodeJS.WriteStream, write: typeof process.stdout.write): typeof process.stdout.write =>
    ((chunk: unknown, ...rest: unknown[]) => { stdio.push(String(chunk)); return (write as (...args: unknown[]) => boolean).call(stream, chunk, ...rest) }) as typeof process.stdout.write
  process.stdout.write = tee(process.stdout, writes.out)
  process.stderr.write = tee(process.stderr, writes.err)
  const onWarning = (w: Error): void => { stdio.push(`${w.name}: ${w.message}`) }
  process.on('warning', onWarning)
  t.after(() => {
    process.stdout.write = writes.out
    process.stderr.write = writes.err
    process.off('warning', onWarning)
  })
  let jobId = 1000

  // The leaks of the last failing run, named by where each token went and the text that holds it.
  let found: string[] = []
  const details = await fc.check(fc.asyncProperty(fc.gen(), async (gen) => {
    const needles = new Needles()
    const logsFrom = g.logs.length
    const answers: string[] = []
    for (const location of LOCATIONS) {
      let name = ''
      const sent: Token[] = []
      const running = (token: string): string => {
        g.gitlab.jobs.set(token, { id: ++jobId, status: 'running', projectId: 100, userId: 7 })
        return token
      }
      const draw: Draw = Object.assign((shapes: readonly Shape[] = SHAPES, searched = true) => {
        const token = gen(tokenArb, shapes)
        if (searched) sent.push(token)
        // Some job tokens are GitLab's running jobs, so allows and the usage report see them.
        return token.shape === 'glcbt' && gen(fc.boolean) ? running(token.text) : token.text
      }, {
        job: () => {
          const token = gen(tokenArb, ['glcbt'])
          sent.push(token)
          return running(token.text)
        }
      })
      const req = location(draw)
      name = req.name
      for (const token of sent) needles.add(token, name)
      const upstream = req.upstream ?? gen(() => UPSTREAM)
      const base = req.listener === 'auth' ? auth : g.url
      const res = req.raw !== undefined
        ? await sendRaw(base, req.raw)
        : await send(base, req.method ?? 'GET', req.path, { ...req.headers, 'x-test-upstream': upstream }, req.body)
      answers.push(`${name} -> ${res.status} ${JSON.stringify(res.headers)} ${res.text}`)
    }
    const leaks: string[] = []
    for (const text of await outputs(g, auth, answers, logsFrom, stdio)) {
      for (const [where, around] of needles.find(text)) leaks.push(`sent as ${where}; written in: ${around}`)
    }
    found = leaks
    return leaks.length === 0
  }), { ...propertyRun(t, 'TOKEN_OUTPUTS', 3, 'each run sends every location'), endOnFailure: true })
  assert.deepEqual(found, [], `seed ${details.seed}`)
  assert.equal(details.failed, false, String(details.errorInstance))

  // The requests reached what they were meant to: allows, refusals of each kind, forward-auth.
  const reasons = new Set(g.logs.map(l => l.reason))
  for (const reason of ['POLICIES_GRANTED', 'UNKNOWN_PROJECT', 'CREDENTIAL_AMBIGUOUS', 'TOKEN_UNKNOWN', 'REQUEST_NOT_PARSEABLE', 'REQUEST_HEADERS_TOO_LARGE', 'JSON_TOO_DEEP', 'BODY_NOT_PARSEABLE', 'BODY_TOO_LARGE_TO_INSPECT', 'MULTIPART_HEADER_TOO_LARGE', 'PATH_BAD_ENCODING', 'UPSTREAM_TIMEOUT', 'UPSTREAM_UNAVAILABLE', 'ADMIN_VALIDATION_FAILED', 'GRAPHQL_PERMISSION_MISSING', 'GRAPHQL_DOCUMENT_INVALID']) assert.ok(reasons.has(reason), `some request was decided ${reason}: ${[...reasons].join(' ')}`)
})
