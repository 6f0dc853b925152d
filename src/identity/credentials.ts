// Finding the credential of a request the way GitLab would (lib/gitlab/auth/auth_finders.rb,
// lib/api/api_guard.rb), in the request as Rack hands it to Rails.
//
// The rule that shapes this module: recognizing a job token where GitLab would not is safe (the
// gate only enforces more), missing one that GitLab would accept is a bypass. So:
// - every place GitLab reads a job token from is read here, on every route;
// - a secret shaped like a job token (`glcbt-...` or `<instance prefix>-glcbt-...`,
//   token-shape.ts) is one wherever it appears, including places GitLab does not take one from
//   (a PRIVATE-TOKEN header, where GitLab answers 401; a Basic password under another user
//   name, outside Conan, Helm and Debian; any parameter);
// - every other credential (a PAT in PRIVATE-TOKEN, an OAuth Bearer, a deploy token) is collected
//   too: GitLab's precedence (deploy token, bearer, job token, session) could pick it over the job
//   token we authorize, so a job token next to a different credential is refused as ambiguous.
//
// Bodies are read by body-scan.ts; its credentials join these in decideCredential().

import type { IncomingHttpHeaders } from 'node:http'
import type { CatalogRoute } from '../catalog/types.ts'
import { isJobTokenShape } from './token-shape.ts'

export type CredentialSource = 'header' | 'query' | 'basic' | 'bearer' | 'nuget' | 'body'

export interface Credential {
  readonly secret: string
  /** True when GitLab would (or might) read it as a CI/CD job token. */
  readonly jobToken: boolean
  readonly source: CredentialSource
  /** Where it was found, e.g. `header:job-token`, `query:token`: for logs and answers, never the secret. */
  readonly where: string
}

export type CredentialResult =
  | { readonly kind: 'none' }
  | { readonly kind: 'job_token', readonly token: string, readonly source: CredentialSource, readonly basicAuth: boolean }
  | { readonly kind: 'ambiguous', readonly sources: string[] }

export interface CredentialRequest {
  /** The canonical request (canonicalize()); only the raw query is read: GitLab reads credentials alike for every method. */
  readonly canonical: { readonly method: string, readonly path: string, readonly query: string }
  /** Node's parsed headers: lower-case keys, repeated custom headers joined with ', '. */
  readonly headers: IncomingHttpHeaders
  /**
   * Node's rawHeaders, when at hand. Node keeps only the first of a repeated Authorization
   * header; the raw list has them all, and a proxy forwarding raw headers must check them all.
   */
  readonly rawHeaders?: readonly string[]
  /** The matched catalog route, or null. Conan routes accept any Basic user name. */
  readonly route: CatalogRoute | null
}

/** A request's headers: the parsed object, and the raw lines when at hand. */
export type HeaderSource = Pick<CredentialRequest, 'headers' | 'rawHeaders'>

/** The user name GitLab expects with a job token in HTTP Basic. */
const CI_USER = 'gitlab-ci-token'

/**
 * Parameters GitLab reads credentials from: `job_token` is always a job token; the others are
 * `token` (a job token for RUNNER_JOB_TOKEN_PARAM, or a trigger/runner token), OAuth
 * `access_token`/`bearer_token`, and `private_token` (a PAT): a job token when shaped as one.
 */
const PARAM_FIELDS = new Map<string, 'job' | 'maybe'>([
  ['job_token', 'job'],
  ['token', 'maybe'],
  ['access_token', 'maybe'],
  ['bearer_token', 'maybe'],
  ['private_token', 'maybe']
])

/** Headers that carry a bare token (names normalized: lower case, '_' read as '-', as Rack does). */
const TOKEN_HEADERS = new Map<string, { kind: 'job' | 'maybe', source: CredentialSource, where: string }>(([
  ['job-token', 'job', 'header'],
  ['private-token', 'maybe', 'header'],
  ['deploy-token', 'maybe', 'header'],
  ['x-nuget-apikey', 'maybe', 'nuget']
] as const).map(([name, kind, source]) => [name, { kind, source, where: `header:${name}` }]))

/** Every header a credential is read from (lower case, '-' spelling). */
export const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(['authorization', ...TOKEN_HEADERS.keys()])

/** Lengths of those names: lower-casing and '_' for '-' keep a name's length. */
const CREDENTIAL_NAME_LENGTHS: ReadonlySet<number> = new Set([...CREDENTIAL_HEADERS].map(name => name.length))

/** Every credential in the headers and the query string, in the order found. */
export function collectCredentials (request: CredentialRequest): Credential[] {
  const found: Credential[] = []
  const authorization: string[] = []
  // Hot path (every API request): a flat name/value list, and a name is lower-cased only when its
  // length is one of a credential header's, which most names' lengths are not.
  const pairs = headerList(request)
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const rawName = pairs[i]!
    if (!CREDENTIAL_NAME_LENGTHS.has(rawName.length)) continue
    const value = pairs[i + 1]!
    const lower = rawName.toLowerCase()
    const name = lower.indexOf('_') === -1 ? lower : lower.replaceAll('_', '-')
    if (name === 'authorization') {
      found.push(...authorizationCredentials(value, isConanRoute(request.route), readsBasicAnyScheme(request.route)))
      authorization.push(value)
      continue
    }
    const def = TOKEN_HEADERS.get(name)
    if (def === undefined) continue
    // Node joins a repeated custom header with ', '; tokens never contain a comma. A value
    // without one (nearly every request) is not split.
    for (const part of value.indexOf(',') === -1 ? [value] : value.split(',')) {
      const secret = part.trim()
      if (secret === '') continue // GitLab uses `.presence`: empty is absent
      found.push({ secret, jobToken: def.kind === 'job' || isJobTokenShape(secret), source: def.source, where: def.where })
    }
  }
  // Puma joins repeated header lines with ", " into the one value Rails reads, and decode64
  // reads Basic credentials through the ", ": a credential split over two lines is one there.
  // Only a request with Authorization reads it as Conan's routes do (hot path: most send none).
  const conan = authorization.length > 0 && isConanRoute(request.route)
  const anyScheme = authorization.length > 0 && readsBasicAnyScheme(request.route)
  if (authorization.length > 1) found.push(...authorizationCredentials(authorization.join(', '), conan, anyScheme))
  // Read as Gitlab::Jira::Middleware leaves them too (jiraRewrite): each line, and Puma's join.
  if (authorization.length > 0 && jiraDvcsConnector(request)) {
    for (const value of authorization.length > 1 ? [...authorization, authorization.join(', ')] : authorization) {
      const rewritten = jiraRewrite(value)
      if (rewritten !== value) found.push(...authorizationCredentials(rewritten, conan, anyScheme))
    }
  }
  const query = request.canonical.query
  const moduleRegistry = query !== '' && isModuleRegistryRoute(request.route)
  for (const [key, value] of queryPairs(query)) {
    // The Terraform module registry takes a JWT in `token` (lib/api/terraform/modules/v1/
    // namespace_packages.rb, job_token_from_jwt): GitLab's HMAC JWT whose `token` claim
    // (`access_token` in newer versions) is the caller's token itself, a job's for a job. That
    // job token is the credential, as the JWT Conan hands out is (Gitlab::TerraformRegistryToken).
    const inner = moduleRegistry && normalizeParamName(key) === 'token' ? jwtJobToken(value, ['token', 'access_token']) : null
    if (inner !== null) {
      found.push({ secret: inner, jobToken: true, source: 'query', where: 'query:token:jwt' })
      continue
    }
    const c = paramCredential(key, value, 'query')
    if (c !== null) found.push(c)
  }
  return found
}

/**
 * An Authorization value with a space after each ',', authorizationCredentials' second reading of
 * a value that holds one: Envoy's ext_authz hands an HTTP authorization service every header once, repeated lines
 * joined with ',' (check_request_utils.cc, setHttpRequest), yet forwards them to GitLab as
 * lines where Authorization is none of its inline headers (header_map_impl.cc, insertByKey: only
 * a build whose extensions register it joins them), and Puma joins those with ', '. Each word
 * after a comma is then a word of GitLab's reading (`http_bearer_token` takes the last). Spacing
 * commas moves no `token` (jiraRewrite), so a rewritten value's spaced reading is the rewrite of
 * the spaced one.
 */
function commasSpaced (value: string): string {
  return value.replaceAll(',', ', ')
}

/**
 * One parameter (query, form, JSON or multipart field) as a credential, or null. Names are read
 * as Rack does (`[job_token]`, `job_token[]` are `job_token`); any value shaped like a job token counts.
 */
export function paramCredential (rawName: string, value: string, source: 'query' | 'body'): Credential | null {
  if (value === '') return null
  const name = normalizeParamName(rawName)
  return namedCredential(name, PARAM_FIELDS.get(name), value, source)
}

/**
 * paramCredential for a parameter of many values (the leaves of a top-level JSON member): its name
 * is read once. Read again for each leaf, a key of kilobytes cost its length at every one, so a
 * member `"[aaa...": [1,1,...]` of 64 KiB took a fifth of a second, streamed 8 MiB a minute.
 */
export function paramCredentials (rawName: string, source: 'query' | 'body'): (value: string) => Credential | null {
  const name = normalizeParamName(rawName)
  const kind = PARAM_FIELDS.get(name)
  return value => value === '' ? null : namedCredential(name, kind, value, source)
}

function namedCredential (name: string, kind: 'job' | 'maybe' | undefined, value: string, source: 'query' | 'body'): Credential | null {
  const job = kind === 'job' || isJobTokenShape(value)
  if (!job && kind === undefined) return null
  return { secret: value, jobToken: job, source, where: `${source}:${kind === undefined ? '*' : name}` }
}

/** True when `name` is (after Rack's reading) a parameter GitLab takes credentials from. */
export function isCredentialParam (rawName: string): boolean {
  return PARAM_FIELDS.has(normalizeParamName(rawName))
}

// ---------------------------------------------------------------------------------------------
// Rack::MethodOverride (rack/method_override.rb), in GitLab's Rails middleware: a POST is routed
// as the method in its `_method` body parameter (`req.POST`: form and multipart, never the query)
// or, without one, in its X-HTTP-Method-Override header; upcased, and only one of HTTP_METHODS.

/** `_method` in a body as Rack::MethodOverride reads it. */
export type MethodParam =
  /** Not there, or the body does not parse for Rack: the header decides. */
  | { readonly kind: 'absent' }
  /** There: it decides, even when it names no method (then the request stays a POST). */
  | { readonly kind: 'present', readonly value: string }
  /** Parsers could read it differently: the request is refused. */
  | { readonly kind: 'uncertain' }

export type MethodOverride =
  | { readonly kind: 'none' }
  /** The method Rails routes (`HEAD` stays `HEAD`: the router reads it as GET). */
  | { readonly kind: 'method', readonly method: string }
  | { readonly kind: 'ambiguous', readonly reason: string }

const METHOD_OVERRIDE_HEADER = 'x-http-method-override'
/** The methods Rack::MethodOverride routes a POST as (rack/method_override.rb, HTTP_METHODS). */
export const OVERRIDE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'PATCH', 'LINK', 'UNLINK'])

/** True when Rack's reading of `name` is the `_method` parameter (or could be: `[_method]`, `_method[]`). */
export function isMethodOverrideParam (rawName: string): boolean {
  return normalizeParamName(rawName) === '_method'
}

// ---------------------------------------------------------------------------------------------
// GitLab's upload middleware (the apollo_upload_server gem's ApolloUploadServer::Middleware,
// which its Railtie puts in the Rails stack of every request, the API's too) runs wherever the
// Content-Type holds `multipart/form-data`: when the parameters hold `operations` and `map`, the
// query's or the body's, it parses `operations` as JSON and writes each of its members with
// `update_param` into ActionDispatch's parameters, the ones GitLab's token finders read
// (`job_token`, `private_token`, `access_token`...). Workhorse hands Rails its uploads as
// multipart whatever the client sent, so a query's `operations` can reach it on any API request.

/** True when Rack's reading of `name` is the `operations` parameter. */
export function isUploadOperationsParam (rawName: string): boolean {
  return normalizeParamName(rawName) === 'operations'
}

/**
 * Why GitLab's upload middleware could write parameters the gate does not read into an API
 * request, or null: an `operations` parameter in the query, or, over a form or JSON body
 * (`formOrJson`), a Content-Type line holding `multipart/form-data` (Rack parses the body by the
 * type Puma's join of the lines starts with, the middleware looks at the whole join). A multipart
 * body's `operations` parts are refused by the multipart scan (body-scan.ts, BodyPlan's
 * `refuseOperations`).
 */
export function uploadOperationsReachable (request: Pick<CredentialRequest, 'canonical' | 'headers' | 'rawHeaders'>, formOrJson: boolean): string | null {
  const query = request.canonical.query
  // Hot path: a name that reads as `operations` is written so, or escaped.
  if (query !== '' && (query.includes('operations') || query.includes('%')) && queryPairs(query).some(([key]) => isUploadOperationsParam(key))) {
    return 'an operations parameter in the query'
  }
  if (formOrJson && namesMultipartFormData(request)) return 'multipart/form-data in the Content-Type of a form or JSON body'
  return null
}

/**
 * Whether a body the gate cannot see (forward-auth) could give GitLab a credential on a route
 * that declares `authenticate_with`, whose TokenLocator reads no body but the query string's
 * parameters (`request.query_parameters`), into which the upload middleware writes an
 * `operations` member, the body's too, under a Content-Type holding `multipart/form-data`: the
 * Terraform module registry's `file` route reads its JWT from `token`, and the virtual
 * registries (`shared_authentication.rb`) a job token from `job_token`, on the routes the catalog
 * lists and on those it does not (`apiPath`, where no route matched).
 */
export function uploadOperationsReachQuery (request: HeaderSource, route: CatalogRoute | null, apiPath?: string): boolean {
  const readsQuery = route === null ? apiPath !== undefined && VIRTUAL_REGISTRY_PATH.test(apiPath) : isModuleRegistryRoute(route) || VIRTUAL_REGISTRY_PATH.test(route.pattern)
  return readsQuery && namesMultipartFormData(request)
}

/** A virtual registry's route, or a path under one: a group's (`/groups/:id/-/virtual_registries/`) or the instance's. */
const VIRTUAL_REGISTRY_PATH = /^\/(?:groups\/[^/]+\/-\/)?virtual_registries(?:\/|$)/

/** A Content-Type line holding `multipart/form-data`, where the upload middleware runs (in any case: more than it). */
function namesMultipartFormData (request: HeaderSource): boolean {
  return headerLines(request, 'content-type').some(line => /multipart\/form-data/i.test(line))
}

/**
 * The X-HTTP-Method-Override header of a POST as Rack reads it (`HTTP_X_HTTP_METHOD_OVERRIDE`).
 * Header strings are binary in Rack, so only ASCII letters are upcased. Repeated lines are
 * ambiguous: Puma joins them into a value that names no method, another server keeps one line.
 */
export function headerMethodOverride (request: Pick<CredentialRequest, 'headers' | 'rawHeaders'>): MethodOverride {
  const values = headerLines(request, METHOD_OVERRIDE_HEADER)
  if (values.length === 0) return { kind: 'none' }
  // Node's headers object joins repeated lines with ', ': without rawHeaders a comma may be one.
  if (values.length > 1 || (request.rawHeaders === undefined && values[0]!.includes(','))) return { kind: 'ambiguous', reason: 'repeated X-HTTP-Method-Override header' }
  const method = values[0]!.replace(/[a-z]+/g, s => s.toUpperCase())
  return OVERRIDE_METHODS.has(method) ? { kind: 'method', method } : { kind: 'none' }
}

/**
 * The method Rails routes a request as: Rack::MethodOverride applies to a POST only; the body's
 * `_method` wins over the header, and is upcased as Ruby upcases UTF-8 (`poſt` is POST).
 */
export function methodOverride (method: string, header: MethodOverride, body: MethodParam): MethodOverride {
  if (method !== 'POST') return { kind: 'none' }
  if (body.kind === 'uncertain') return { kind: 'ambiguous', reason: '_method in a body parsers read differently' }
  if (body.kind === 'absent') return header
  const upper = body.value.toUpperCase()
  return OVERRIDE_METHODS.has(upper) ? { kind: 'method', method: upper } : { kind: 'none' }
}

/** Combines every credential of a request into the one answer the next stages need. */
export function decideCredential (credentials: readonly Credential[]): CredentialResult {
  let job: Credential | undefined
  // Whether two secrets differ, without a Set (which hashes every secret, once per request).
  let differ = false
  for (const c of credentials) {
    if (c.secret !== credentials[0]!.secret) differ = true
    if (c.jobToken && job === undefined) job = c
  }
  if (job === undefined) return { kind: 'none' }
  if (differ) return { kind: 'ambiguous', sources: [...new Set(credentials.map(c => c.where))] }
  return { kind: 'job_token', token: job.secret, source: job.source, basicAuth: credentials.some(c => c.source === 'basic') }
}

/** collectCredentials + decideCredential, with credentials found in the body (body-scan.ts). */
export function findCredential (request: CredentialRequest, bodyCredentials: readonly Credential[] = []): CredentialResult {
  return decideCredential([...collectCredentials(request), ...bodyCredentials])
}

/**
 * Whether Basic is read from any scheme: routes that declare `authenticate_with`
 * (TokenLocator's `http_basic_auth`), and requests no route matched.
 */
function readsBasicAnyScheme (route: CatalogRoute | null): boolean {
  return route === null || route.authenticateWith === true
}

export function isConanRoute (route: CatalogRoute | null): boolean {
  return route !== null && route.pattern.includes('/conan/')
}

/** The Terraform module registry's namespace routes, whose `file` route reads a job token from a JWT in `token`. */
function isModuleRegistryRoute (route: CatalogRoute | null): boolean {
  return route !== null && route.pattern.startsWith('/packages/terraform/modules/v1/')
}

// ---------------------------------------------------------------------------------------------

/**
 * Every line of header `name` (lower case, '-' spelling) as Puma hands it to Rack: in any case,
 * and spelled with '_' for '-' (Puma reads `Private_Token` as `PRIVATE-TOKEN`; since 5.6.9 and
 * 6.4.3 only when no '-' spelling came beside it, which the callers read as two lines: a caller
 * that sees two lines is never less strict than Puma). One entry per line when the raw lines are
 * known (Node's headers object joins a repeated custom header with ', ' and keeps the first
 * Authorization only).
 */
export function headerLines (request: HeaderSource, name: string): string[] {
  const values: string[] = []
  const pairs = headerList(request)
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const raw = pairs[i]!
    if (raw.length === name.length && raw.toLowerCase().replaceAll('_', '-') === name) values.push(pairs[i + 1]!)
  }
  return values
}

/**
 * The Cookie header as GitLab reads it: Puma joins repeated lines with ', ' (Rack then splits
 * cookies on ';' alone, so a session in a later line is part of an earlier cookie's value), blank
 * lines included as Puma keeps them (`Cookie: ` then `Cookie: _gitlab_session=x` is
 * `, _gitlab_session=x`, whose first cookie is named `, _gitlab_session`); undefined without a
 * line that holds anything. The users' package rules ask GitLab whom this value signs in, and the
 * proxy forwards this value (src/proxy/forward.ts), never Node's join of the lines with '; ', in
 * which Rack finds every line's cookies.
 */
export function cookieHeader (request: HeaderSource): string | undefined {
  const lines = headerLines(request, 'cookie')
  return lines.every(line => line.trim() === '') ? undefined : lines.join(', ')
}

/** The headers as a flat name, value, name, value... list: Node's rawHeaders as they are, else built from the object. */
function headerList (request: Pick<CredentialRequest, 'headers' | 'rawHeaders'>): readonly string[] {
  if (request.rawHeaders !== undefined) return request.rawHeaders
  const list: string[] = []
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue
    if (Array.isArray(value)) for (const v of value) list.push(name, v)
    else list.push(name, value)
  }
  return list
}

/**
 * Whether Gitlab::Jira::Middleware, in GitLab's Rails middleware (lib/gitlab/jira/middleware.rb),
 * rewrites the request's Authorization: its User-Agent starts with "Jira DVCS Connector" (older
 * GitLab: in that case; newer: in any). Read leniently, any line in any case: reading the header
 * a second way where GitLab reads it one way only finds more credentials, never fewer.
 */
export function jiraDvcsConnector (request: HeaderSource): boolean {
  return headerLines(request, 'user-agent').some(line => line.trimStart().toLowerCase().startsWith('jira dvcs connector'))
}

/**
 * Authorization as Gitlab::Jira::Middleware hands it on: the first `token` anywhere in it, not
 * only a scheme, replaced by `Bearer` (`sub('token', 'Bearer')`), so `token glpat-...` is
 * Bearer, and Basic credentials with `token` in their base64 decode to other bytes.
 */
export function jiraRewrite (authorization: string): string {
  return authorization.replace('token', 'Bearer')
}

/**
 * The credentials GitLab could read from one Authorization value (a line, Puma's join of the
 * lines, or Jira's rewrite): as written, and with its commas spaced where it holds one
 * (commasSpaced; a value without a comma, nearly every request's, is read once).
 */
function authorizationCredentials (header: string, conan: boolean, anyScheme: boolean): Credential[] {
  const found = authorizationReading(header, conan, anyScheme)
  return header.indexOf(',') === -1 ? found : [...found, ...authorizationReading(commasSpaced(header), conan, anyScheme)]
}

function authorizationReading (header: string, conan: boolean, anyScheme: boolean): Credential[] {
  const found = schemeCredentials(header, conan)
  // Routes that authenticate with `http_bearer_token` (Cargo, the Terraform module registry)
  // take the last word of Authorization whatever the scheme
  // (lib/gitlab/api_authentication/token_locator.rb: `split(' ').last`): any word that looks
  // like a job token is one.
  for (const word of header.split(/\s+/)) {
    if (isJobTokenShape(word) && !found.some(c => c.secret === word)) found.push({ secret: word, jobToken: true, source: 'bearer', where: 'header:authorization' })
  }
  // Conan reads Basic credentials after the first `Basic ` anywhere in the header, whatever
  // comes before it (`Bearer Basic ...`, `XBasic ...`), and takes the password as a job token
  // (lib/api/helpers/packages_manager_clients_helpers.rb, decode_token:
  // `split('Basic ', 2).second`, then `Base64.decode64(...).split(':', 2).second`).
  const basic = conan ? header.indexOf('Basic ') : -1
  if (basic !== -1) {
    const { password } = decodeBasic(header.slice(basic + 'Basic '.length))
    if (password !== '' && !found.some(c => c.secret === password)) found.push({ secret: password, jobToken: true, source: 'basic', where: 'basic:conan' })
  }
  // Routes that read HTTP Basic through Gitlab::APIAuthentication::TokenLocator (Helm, Debian,
  // RPM, NuGet; `http_basic_auth`) decode what follows the scheme whatever the scheme is
  // (`user_name_and_password`, never `has_basic_credentials?`): `Foo <base64>`, `Bearer
  // <base64>`, Envoy's `Basic,<base64>` (Puma's `Basic, <base64>`). A job token in that reading
  // is one, where the user name and password are both there as TokenLocator asks. Only there
  // (and where no route matched): a JWT's base64url decodes to JSON that looks like one.
  for (const param of anyScheme ? railsAuthParams(header) : NO_PARAMS) {
    const { user, password } = decodeBasic(param)
    if (user !== '' && password !== '' && (user === CI_USER || isJobTokenShape(password)) && !found.some(c => c.secret === password)) found.push({ secret: password, jobToken: true, source: 'basic', where: 'basic:any-scheme' })
    if (isJobTokenShape(user) && !found.some(c => c.secret === user)) found.push({ secret: user, jobToken: true, source: 'basic', where: 'basic:user' })
  }
  return found
}

const NO_PARAMS: readonly string[] = []
const FIRST_WORD = /^[ \t\n\v\f\r]*[^ \t\n\v\f\r]+/

/**
 * More commas in an Authorization line's first word than lines any client sends joined: each is
 * a reading (railsAuthParams) that decodes the rest of the value, so thousands of them within the
 * header size limit cost seconds of one request's CPU.
 */
const MAX_FIRST_WORD_COMMAS = 16

/**
 * Whether an Authorization line holds more commas in its first word than are read, on a route
 * that reads Basic under any scheme: refused (CREDENTIAL_AMBIGUOUS) before its credentials are
 * collected. Checking the lines is enough: Puma's join adds at most one comma to the first word.
 */
export function authorizationTooManyCommas (request: CredentialRequest): boolean {
  if (!readsBasicAnyScheme(request.route)) return false
  return headerLines(request, 'authorization').some(line => {
    const word = FIRST_WORD.exec(line)
    if (word === null) return false
    let commas = 0
    for (let comma = word[0].indexOf(','); comma !== -1; comma = word[0].indexOf(',', comma + 1)) {
      if (++commas > MAX_FIRST_WORD_COMMAS) return true
    }
    return false
  })
}

/**
 * What ActionController::HttpAuthentication::Basic decodes (`auth_param`:
 * `authorization.to_s.split(" ", 2).second`: Ruby's awk-style split, at ASCII white space only,
 * leading white space skipped), and what it decodes where the value is Envoy's join of lines
 * (`Foo,AAA` and `<base64>` as `Foo,AAA,<base64>`): GitLab gets the lines, Puma joins them with
 * ', ', and the first word ends at the comma that ended a line, any comma of the first word here.
 * What follows each of those commas is read too (decode64 skips the commas and spaces the join
 * adds); the commas-spaced reading finds only the first.
 */
function railsAuthParams (header: string): string[] {
  const word = FIRST_WORD.exec(header)
  if (word === null) return []
  const end = word[0].length
  const params: string[] = []
  for (let comma = header.indexOf(','); comma !== -1 && comma < end; comma = header.indexOf(',', comma + 1)) {
    if (comma + 1 < header.length) params.push(header.slice(comma + 1))
  }
  const rest = header.slice(end).replace(/^[ \t\n\v\f\r]+/, '')
  if (rest !== '') params.push(rest)
  return params
}

function schemeCredentials (header: string, conan: boolean): Credential[] {
  const value = header.trim()
  // Rails splits scheme from credentials with Ruby's `split(" ", 2)`: at the first run of ASCII
  // white space. \s also splits at other white space: more requests read as Basic, never fewer.
  const space = value.search(/\s/)
  const scheme = space === -1 ? '' : value.slice(0, space).toLowerCase()
  const rest = space === -1 ? value : value.slice(space + 1).trim()
  if (rest === '') return []

  if (scheme === 'basic') {
    const { user, password } = decodeBasic(rest)
    const found: Credential[] = []
    // A token pasted as the user name (`https://glcbt-...@host`): GitLab ignores it, we do not.
    if (isJobTokenShape(user)) found.push({ secret: user, jobToken: true, source: 'basic', where: 'basic:user' })
    if (password !== '') {
      // Conan accepts a job token under any user name (lib/api/concerns/packages/conan_endpoints.rb).
      const job = user === CI_USER || conan || isJobTokenShape(password)
      found.push({ secret: password, jobToken: job, source: 'basic', where: 'basic' })
    }
    return found
  }

  if (scheme === 'bearer') {
    if (isJobTokenShape(rest)) return [{ secret: rest, jobToken: true, source: 'bearer', where: 'bearer' }]
    // The Conan client trades Basic credentials for a JWT whose `access_token` claim is the job
    // token itself (lib/gitlab/conan_token.rb, from_job): that Bearer is the job token.
    const inner = conan ? jwtJobToken(rest, ['access_token']) : null
    if (inner !== null) return [{ secret: inner, jobToken: true, source: 'bearer', where: 'bearer:conan' }]
    return [{ secret: rest, jobToken: false, source: 'bearer', where: 'bearer' }]
  }

  // No scheme, or one GitLab does not read: still a job token if it looks like one. Where a word
  // of it does, that word is the credential (added by authorizationCredentials).
  if (/\s/.test(rest) && rest.split(/\s+/).some(isJobTokenShape)) return []
  return [{ secret: rest, jobToken: isJobTokenShape(rest), source: 'bearer', where: 'header:authorization' }]
}

/**
 * The user and password of HTTP Basic credentials, decoded as Rails does
 * (ActionController::HttpAuthentication::Basic: `Base64.decode64(param).split(":", 2)`).
 * Ruby's decode64 is not Node's base64: it skips every byte outside the standard alphabet
 * (`-`, `_`, spaces, anything) and stops at a `=` inside a group, where Node's decoder reads
 * `-`/`_` as base64url and garbles the rest. Reading it any other way than Ruby is a bypass.
 */
export function decodeBasic (param: string): { user: string, password: string } {
  const decoded = rubyDecode64(param).toString('latin1')
  const colon = decoded.indexOf(':')
  return colon === -1 ? { user: decoded, password: '' } : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

const B64_VALUE = (() => {
  const table = new Int8Array(256).fill(-1)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i
  return table
})()

/**
 * Ruby's `String#unpack1("m")` (pack.c, the lenient branch), step for step: the first two
 * symbols of a group skip anything that is not in the alphabet, `=` included; the last two skip
 * likewise but stop at `=`. A partial group at the end yields the bytes it completes.
 */
export function rubyDecode64 (input: string): Buffer {
  const n = input.length
  const out = Buffer.allocUnsafe(Math.floor(n * 3 / 4) + 3)
  let o = 0
  let s = 0
  // Characters above 0xff are not bytes of the header; they count as outside the alphabet.
  const at = (i: number): number => { const c = input.charCodeAt(i); return c < 256 ? B64_VALUE[c]! : -1 }
  let a = -1
  let b = -1
  let c = -1
  while (s < n) {
    a = b = c = -1
    let d = -1
    while (s < n && (a = at(s)) === -1) s++
    if (s >= n) { a = -1; break }
    s++
    while (s < n && (b = at(s)) === -1) s++
    if (s >= n) { b = -1; break }
    s++
    while (s < n && (c = at(s)) === -1 && input[s] !== '=') s++
    if (s >= n || input[s] === '=') { c = -1; break }
    s++
    while (s < n && (d = at(s)) === -1 && input[s] !== '=') s++
    if (s >= n || input[s] === '=') break
    s++
    out[o++] = (a << 2 | b >> 4) & 0xff
    out[o++] = (b << 4 | c >> 2) & 0xff
    out[o++] = (c << 6 | d) & 0xff
    a = -1
  }
  if (a !== -1 && b !== -1) {
    out[o++] = (a << 2 | b >> 4) & 0xff
    if (c !== -1) out[o++] = (b << 4 | c >> 2) & 0xff
  }
  return out.subarray(0, o)
}

/**
 * The job token a GitLab JWT carries in one of `claims` (unverified: GitLab checks the signature),
 * or null. Its parts as ruby-jwt splits them (Ruby's `split('.')` drops trailing empty parts):
 * `<header>.<payload>.<signature>.` is the JWT GitLab verifies, with the same job token in it.
 * More parts than three are read too: a claim read where GitLab would not only adds a credential.
 */
function jwtJobToken (jwt: string, claims: readonly string[]): string | null {
  const parts = jwt.split('.')
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop()
  if (parts.length < 3) return null
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'))
    if (payload === null || typeof payload !== 'object') return null
    for (const claim of claims) {
      const token: unknown = (payload as Record<string, unknown>)[claim]
      if (typeof token === 'string' && isJobTokenShape(token)) return token
    }
    return null
  } catch {
    return null
  }
}

/**
 * `key=value` pairs of a query string or form body, decoded once ('+' is a space). Rails splits
 * the query on '&' and ';' (and Rack skips spaces after a separator), so both split here: a
 * value containing ';' then reads as two pairs, which can only add credentials, never hide one.
 */
export function queryPairs (query: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = []
  // Hot path (every request with a query): the pieces between '&' and ';' found by a scan, as
  // split(/[&;]/) finds them, without a regular expression; empty pieces are skipped.
  for (let start = 0, i = 0; i <= query.length; i++) {
    const c = i === query.length ? 0x26 : query.charCodeAt(i)
    if (c !== 0x26 && c !== 0x3b) continue
    if (i > start) {
      const piece = query.slice(start, i)
      const eq = piece.indexOf('=')
      const key = eq === -1 ? piece : piece.slice(0, eq)
      pairs.push([decodeFormComponent(key), eq === -1 ? '' : decodeFormComponent(piece.slice(eq + 1))])
    }
    start = i + 1
  }
  return pairs
}

/**
 * A parameter name as Rack reads it (leading brackets skipped, cut at the first bracket), with
 * leading white space skipped too: Rack keeps it (`+job_token` is ` job_token` to Rack), so this
 * reads more names as credential (or GraphQL) parameters than Rack does: the safe side.
 */
export function normalizeParamName (name: string): string {
  // Hot path (every query parameter): a name that starts with a letter, digit or '_' and holds no
  // bracket is read as it is.
  const c = name.charCodeAt(0)
  if (((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f) && name.indexOf('[') === -1 && name.indexOf(']') === -1) return name
  const m = /^[\s[\]]*([^[\]]*)/.exec(name)
  return m === null ? name : m[1]!
}

/** application/x-www-form-urlencoded decoding, once; an invalid escape is kept as sent. */
export function decodeFormComponent (s: string): string {
  if (s.indexOf('%') === -1) return s.indexOf('+') === -1 ? s : s.replaceAll('+', ' ')
  // Hot for every form body: while everything is ASCII the text is built directly; UTF-8
  // sequences (escaped or not) take the byte path below.
  let ascii = ''
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i)
    if (c === 0x25 && i + 2 < s.length) {
      const hi = hexDigit(s.charCodeAt(i + 1))
      const lo = hexDigit(s.charCodeAt(i + 2))
      if (hi >= 0 && lo >= 0) {
        c = hi * 16 + lo
        i += 2
      }
    } else if (c === 0x2b) {
      c = 0x20
    }
    if (c >= 0x80) return decodeFormBytes(s)
    ascii += String.fromCharCode(c)
  }
  return ascii
}

/** The value of one hexadecimal digit's character code, or -1. */
export function hexDigit (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1
}

function decodeFormBytes (s: string): string {
  const bytes: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x25 && i + 2 < s.length) {
      const hex = s.slice(i + 1, i + 3)
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(Number.parseInt(hex, 16))
        i += 2
        continue
      }
    }
    if (c === 0x2b) { bytes.push(0x20); continue }
    if (c < 0x80) { bytes.push(c); continue }
    const cp = s.codePointAt(i)!
    if (cp > 0xffff) i++
    for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b)
  }
  return Buffer.from(bytes).toString('utf8')
}
