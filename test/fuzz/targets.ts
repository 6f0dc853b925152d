// The fuzz targets: the parsers that decide what the gate authorizes. Each one takes generated
// hostile input (arbitraries.ts), calls the code under test (timed by the harness), and checks
// what it returned: only the documented error types, and the invariants each parser promises.

import { isDeepStrictEqual } from 'node:util'
import { StringDecoder } from 'node:string_decoder'
import { Readable } from 'node:stream'
import fc from 'fast-check'
import { loadCatalog } from '../../src/catalog/load.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { errors, type ErrorCode } from '../../src/errors.ts'
import { createCanonicalizer, decodeParam, type CanonicalRequest } from '../../src/routing/canonical.ts'
import { Router, type RouteMatch } from '../../src/routing/router.ts'
import { parsePattern } from '../../src/catalog/pattern.ts'
import { collectCredentials, decideCredential, decodeBasic, queryPairs, type Credential, type CredentialResult } from '../../src/identity/credentials.ts'
import { bodyCredentials, createBodyScanner, DEFAULT_MAX_INSPECTED_BODY_BYTES, type BodyInspection, type BodyPlan } from '../../src/identity/body-scan.ts'
import { createMultipartGuard, DEFAULT_MAX_PART_HEADER_BYTES, type MultipartGuardOptions } from '../../src/identity/multipart.ts'
import { JsonScanner } from '../../src/identity/json-guard.ts'
import { IdentityError, MAX_TOKEN_BYTES } from '../../src/identity/types.ts'
import { escapeSingleQuotedNewlines, readGraphqlParams, rubyLexDifference, type GraphqlParams } from '../../src/admin/graphql.ts'
import { readDocument, type DocumentResult } from '../../src/graphql/documents.ts'
import { createOracle, type OracleMatch } from '../helpers/oracle.ts'
import {
  bodyRequest, catalogWords, chunking, graphqlDocument, headerList, METHOD, multipartBody, queryString, requestTarget, routedTarget, splitBody, tokenValue,
  type BodyRequest, type Chunking, type MultipartSpec
} from './arbitraries.ts'
import { PropertyViolation, violation, type FuzzTarget } from './harness.ts'

const routes: readonly CatalogRoute[] = loadCatalog().routes
const words = catalogWords(routes)
const router = Router.compile(routes)
const oracle = createOracle(routes)

const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && Object.hasOwn(errors, code)

/** At most n characters of a string, escaped, with its length: for reports of large inputs. */
export function clip (s: string, n = 300): string {
  const json = JSON.stringify(s)
  return json.length <= n ? json : `${json.slice(0, n)}..." (${s.length} chars)`
}

function clipBytes (b: Buffer, n = 300): string {
  return `${clip(b.toString('latin1'), n)} (${b.length} bytes, latin1)`
}

// ---------------------------------------------------------------------------------------------
// Canonicalizer

const CANONICALIZERS = [
  createCanonicalizer(),
  createCanonicalizer({ relativeUrlRoot: '/gitlab' }),
  createCanonicalizer({ maxPathLength: 64, maxSegmentLength: 16 })
] as const

interface PathInput { method: string, target: string, variant: number }

function checkCanonical (input: PathInput, c: CanonicalRequest): void {
  violation(c !== null && typeof c === 'object', 'canonicalize returned no object')
  if (c.kind === 'rejected') {
    violation(isErrorCode(c.code), () => `unknown error code ${String(c.code)}`)
    violation(typeof c.reason === 'string' && c.reason.length < 400, () => `reason is not a short string: ${clip(String(c.reason))}`)
    return
  }
  violation(c.kind === 'api' || c.kind === 'other', () => `unknown kind ${String((c as { kind: unknown }).kind)}`)
  const { path, query, method } = c
  violation(path.startsWith('/') && (path === '/' || (!path.endsWith('/') && !path.includes('//'))), () => `path is not canonical: ${clip(path)}`)
  violation(!path.includes('?'), () => `path holds a '?': ${clip(path)}`)
  if (c.kind === 'api') {
    const root = input.variant === 1 ? '/gitlab' : ''
    violation(path === root + '/api/v4' + (c.apiPath === '/' ? '' : c.apiPath), () => `apiPath ${clip(c.apiPath)} does not end path ${clip(path)}`)
  }
  // Every segment is a parameter some route may decode: decoding never throws.
  for (const segment of path.split('/')) decodeParam(segment)
  // What is forwarded canonicalizes to itself.
  const again = CANONICALIZERS[input.variant]!(method, query === '' ? path : `${path}?${query}`)
  violation(isDeepStrictEqual(again, c), () => `not idempotent: ${JSON.stringify(c).slice(0, 300)} then ${JSON.stringify(again).slice(0, 300)}`)
}

export const canonicalizeTarget: FuzzTarget<PathInput, PathInput, CanonicalRequest> = {
  name: 'canonicalize',
  covers: 'createCanonicalizer()(method, target): never throws, a known code on rejection, idempotent, every segment decodes',
  arbitrary: fc.record({
    method: METHOD,
    target: fc.oneof({ weight: 6, arbitrary: requestTarget(words) }, { weight: 2, arbitrary: routedTarget(routes, words).map(t => t.target) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) }, { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 60 }).map(s => '/' + s) }),
    variant: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(2) })
  }),
  async: false,
  exec: input => CANONICALIZERS[input.variant]!(input.method, input.target),
  check: (input, result) => checkCanonical(input, result),
  show: input => `canonicalizer #${input.variant} ${clip(input.method, 40)} ${clip(input.target)}`,
  size: input => input.method.length + input.target.length
}

// ---------------------------------------------------------------------------------------------
// Router

interface RouteInput { method: string, target: string }
interface RoutePrepared { input: RouteInput, method: string, apiPath: string | null }

/** Routes by pattern variant count, for checking parameter names. */
const PARAM_NAMES = new Map(routes.map(r => [r.id, new Set(parsePattern(r.pattern).flatMap(v => v.tokens.flatMap(t => t.kind === 'static' ? [] : [t.name])))]))
/** Paths short enough for the (slow, plain) oracle. */
const ORACLE_MAX_SEGMENTS = 24

export const routerTarget: FuzzTarget<RouteInput, RoutePrepared, RouteMatch | null> = {
  name: 'router',
  covers: 'Router.compile(shipped catalog).match on canonical paths: never throws, agrees with the reference oracle on short paths',
  arbitrary: fc.oneof({ weight: 4, arbitrary: routedTarget(routes, words) }, { weight: 1, arbitrary: fc.record({ method: METHOD, target: requestTarget(words) }) }),
  async: false,
  prepare: input => {
    const c = CANONICALIZERS[0](input.method, input.target)
    return c.kind === 'api' ? { input, method: c.method, apiPath: c.apiPath } : { input, method: '', apiPath: null }
  },
  exec: p => p.apiPath === null ? null : router.match(p.method, p.apiPath),
  check: (p, m) => {
    const apiPath = p.apiPath
    if (apiPath === null) return
    if (m !== null) {
      violation(m.route.method === p.method, () => `a ${p.method} path matched ${m.route.method} route ${m.route.id}`)
      violation(typeof m.format === 'boolean', 'format is not a boolean')
      const names = PARAM_NAMES.get(m.route.id)!
      for (const [k, v] of Object.entries(m.params)) {
        violation(names.has(k) && typeof v === 'string', () => `route ${m.route.id} got parameter ${k}=${clip(String(v))}`)
      }
    }
    if (apiPath.split('/').length <= ORACLE_MAX_SEGMENTS + 1) {
      const expected = oracle.match(p.method, apiPath)
      const got: OracleMatch | null = m === null ? null : { routeId: m.route.id, params: { ...m.params }, format: m.format }
      violation(isDeepStrictEqual(got, expected), () => `router and oracle disagree on ${p.method} ${clip(apiPath)}: router ${JSON.stringify(got)}, oracle ${JSON.stringify(expected)}`)
    }
  },
  show: input => `${clip(input.method, 40)} ${clip(input.target)}`,
  size: input => input.method.length + input.target.length
}

// ---------------------------------------------------------------------------------------------
// Credential finder

interface CredentialInput {
  pairs: Array<[string, string]>
  query: string
  route: CatalogRoute | null
  basic: string
  raw: boolean
}

interface CredentialOutput {
  found: Credential[]
  decided: CredentialResult
  basic: { user: string, password: string }
  query: Array<[string, string]>
}

const WHERE = /^(?:header:(?:job-token|private-token|deploy-token|x-nuget-apikey|authorization)|query:(?:job_token|token|access_token|bearer_token|private_token|\*)|body:(?:job_token|token|access_token|bearer_token|private_token|\*)|basic(?::user|:conan|:any-scheme)?|bearer(?::conan)?)$/

/** Node's parsed headers for a raw list: lower-case names, one Authorization, others joined. */
function parsedHeaders (pairs: ReadonlyArray<[string, string]>): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>
  for (const [name, value] of pairs) {
    const key = name.toLowerCase()
    if (out[key] === undefined) out[key] = value
    else if (key !== 'authorization') out[key] += ', ' + value
  }
  return out
}

export function checkCredentials (found: readonly Credential[], decided: CredentialResult): void {
  for (const c of found) {
    violation(typeof c.secret === 'string' && c.secret !== '', 'a credential with an empty secret')
    violation(WHERE.test(c.where), () => `credential location ${clip(c.where)} is not one of the fixed names (it must never carry request text)`)
  }
  if (decided.kind === 'none') {
    violation(!found.some(c => c.jobToken), 'a job token was found but the decision is none')
  } else if (decided.kind === 'job_token') {
    violation(found.some(c => c.jobToken && c.secret === decided.token), 'the decided token is not a found job token')
    violation(found.every(c => c.secret === decided.token), 'two different secrets decided as one job token')
  } else {
    violation(decided.kind === 'ambiguous' && decided.sources.length > 0, () => `unknown decision ${JSON.stringify(decided).slice(0, 200)}`)
  }
}

export const credentialsTarget: FuzzTarget<CredentialInput, CredentialInput, CredentialOutput> = {
  name: 'credentials',
  covers: 'collectCredentials/decideCredential (raw and parsed headers), decodeBasic, queryPairs: never throw; one job token or ambiguous; locations never echo input',
  arbitrary: fc.record({
    pairs: headerList(),
    // The request line shares Node's limit on the request head (16 KiB by default).
    query: queryString().map(q => q.slice(0, 16 * 1024)),
    route: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: fc.constantFrom(...routes) },
      { weight: 1, arbitrary: fc.constantFrom(...routes.filter(r => r.pattern.includes('/conan/'))) }),
    basic: fc.oneof(tokenValue(), fc.string({ unit: 'binary', maxLength: 40 })),
    raw: fc.boolean()
  }),
  async: false,
  exec: input => {
    const found = collectCredentials({
      canonical: { method: 'GET', path: '/api/v4/projects/1', query: input.query },
      headers: parsedHeaders(input.pairs),
      ...(input.raw ? { rawHeaders: input.pairs.flat() } : {}),
      route: input.route
    })
    return { found, decided: decideCredential(found), basic: decodeBasic(input.basic), query: [...queryPairs(input.query)] }
  },
  check: (_input, out) => {
    checkCredentials(out.found, out.decided)
    violation(typeof out.basic.user === 'string' && typeof out.basic.password === 'string', 'decodeBasic returned no strings')
    violation(!/[^\x00-\xff]/.test(out.basic.user + out.basic.password), 'decodeBasic returned characters above 0xFF (it decodes bytes)')
    for (const [k, v] of out.query) violation(typeof k === 'string' && typeof v === 'string', 'queryPairs yielded a non-string')
  },
  show: input => `headers ${clip(JSON.stringify(input.pairs))} query ${clip(input.query)} route ${input.route?.id ?? 'null'} basic ${clip(input.basic)} raw ${input.raw}`,
  size: input => input.pairs.reduce((n, [k, v]) => n + k.length + v.length, 0) + input.query.length + input.basic.length
}

// ---------------------------------------------------------------------------------------------
// Body scanner

const SCANNERS = {
  normal: { scanner: createBodyScanner(), maxBytes: DEFAULT_MAX_INSPECTED_BODY_BYTES, maxPartHeaderBytes: DEFAULT_MAX_PART_HEADER_BYTES },
  small: { scanner: createBodyScanner({ maxBytes: 1024, maxPartHeaderBytes: 64 }), maxBytes: 1024, maxPartHeaderBytes: 64 }
}

interface BodyOutput {
  plan: BodyPlan
  /** read()'s answer, for a body planned as 'buffer'. */
  inspection: BodyInspection | null
  /** bodyCredentials on the generated type, for a body not planned as 'buffer': credentials, or the documented error it threw. */
  direct: Credential[] | Error | null
}

/** What bodyCredentials documents throwing: SyntaxError for JSON that does not parse, JSON_TOO_DEEP for JSON nested too deep, IdentityError for multipart. */
function documentedBodyError (type: BodyRequest['type'], error: unknown): boolean {
  return (type === 'json' && (error instanceof SyntaxError || (error instanceof IdentityError && error.code === 'JSON_TOO_DEEP'))) || (type === 'multipart' && error instanceof IdentityError)
}

/**
 * bodyCredentials as the gate calls it: on a body of at most the scanner's limit (larger ones
 * are refused before parsing). Returns the documented error instead of throwing it.
 */
function directCredentials (input: BodyRequest): Credential[] | Error {
  const limits = input.small ? SCANNERS.small : SCANNERS.normal
  try {
    return bodyCredentials(input.type, input.body.subarray(0, limits.maxBytes), input.boundary, limits.maxPartHeaderBytes)
  } catch (error) {
    if (!documentedBodyError(input.type, error)) throw error
    return error as Error
  }
}

const PLAN_KINDS = new Set(['pass', 'buffer', 'stream', 'rejected'])

export const bodyScanTarget: FuzzTarget<BodyRequest, BodyRequest, BodyOutput> = {
  name: 'body-scan',
  covers: 'createBodyScanner plan/read (and bodyCredentials where the plan is not to buffer) on form, JSON and multipart bodies: read resolves (never rejects) with the bytes as sent; only documented errors; the JSON guard reads JSON as the buffered scan does',
  arbitrary: bodyRequest(),
  async: true,
  // Timed: what the gate runs for the request, so one parse per input.
  exec: async input => {
    const { scanner } = input.small ? SCANNERS.small : SCANNERS.normal
    const plan = scanner.plan(input.headers, input.method)
    if (plan.kind === 'buffer') return { plan, inspection: await scanner.read(plan, Readable.from(splitBody(input.body, input.chunks))), direct: null }
    return { plan, inspection: null, direct: directCredentials(input) }
  },
  check: (input, out) => {
    violation(PLAN_KINDS.has(out.plan.kind), () => `unknown plan ${JSON.stringify(out.plan)}`)
    if (out.plan.kind === 'rejected') violation(isErrorCode(out.plan.code), () => `unknown plan code ${out.plan.kind === 'rejected' ? out.plan.code : ''}`)
    if (out.plan.kind === 'buffer' && out.plan.type === 'multipart') violation(typeof out.plan.boundary === 'string' && out.plan.boundary !== '', 'multipart plan without a boundary')
    const i = out.inspection
    if (i !== null) {
      if (i.kind === 'buffered') {
        violation(i.bytes.equals(input.body), 'read returned other bytes than were sent')
        checkCredentials(i.credentials, decideCredential(i.credentials))
      } else {
        violation(i.kind === 'rejected' && isErrorCode(i.code), () => `unknown inspection ${JSON.stringify(i).slice(0, 200)}`)
      }
    }
    // read() turns every exception into 'rejected'; call the parser itself too, untimed, to see which.
    const direct = out.direct ?? directCredentials(input)
    if (Array.isArray(direct)) checkCredentials(direct, decideCredential(direct))
    if (input.type === 'json') checkJsonGuard(input)
  },
  show: input => `${input.type} ${input.method} headers ${JSON.stringify(input.headers).slice(0, 300)} small ${input.small} chunks ${JSON.stringify(input.chunks).slice(0, 120)} body ${clipBytes(input.body)}`,
  size: input => input.body.length
}

/**
 * The JSON guard's reading (json-guard.ts), fed in the input's chunks, against the buffered scan
 * of the whole body: the same credentials, and a refusal exactly where JSON.parse refuses (or a
 * documented limit of the guard: nesting depth, a key too long to read).
 */
function checkJsonGuard (input: BodyRequest): void {
  let buffered: Credential[] | null
  let deep = false
  try {
    buffered = bodyCredentials('json', input.body)
  } catch (error) {
    deep = error instanceof IdentityError && error.code === 'JSON_TOO_DEEP'
    if (!(error instanceof SyntaxError) && !deep) throw error
    buffered = null
  }
  // A value longer than a token is kept truncated by the guard: compared as '<long>'.
  const shown = (c: Credential, truncated = false): [string, boolean, string] => [c.where, c.jobToken, truncated || c.secret.length > MAX_TOKEN_BYTES ? '<long>' : c.secret]
  const streamed: Array<[string, boolean, string]> = []
  let code: string | null = null
  try {
    const scanner = new JsonScanner((c, truncated) => { streamed.push(shown(c, truncated)) })
    const decoder = new StringDecoder('utf8')
    for (const chunk of splitBody(input.body, input.chunks)) scanner.write(decoder.write(chunk))
    scanner.write(decoder.end())
    scanner.end()
  } catch (error) {
    violation(error instanceof IdentityError, () => `the JSON guard threw ${error instanceof Error ? error.stack : String(error)}`)
    code = (error as IdentityError).code
  }
  // JSON the buffered scan reads whole but finds too deep: the guard stops at the same depth.
  if (deep) violation(code === 'JSON_TOO_DEEP', () => `the buffered scan finds the body too deep, the JSON guard ${code ?? 'reads it'}`)
  if (code === 'JSON_TOO_DEEP' || code === 'JSON_KEY_TOO_LONG') return
  if (buffered === null) {
    violation(code === 'BODY_NOT_PARSEABLE', () => `JSON.parse refuses the body, the JSON guard ${code ?? 'reads it'}`)
    return
  }
  violation(code === null, () => `JSON.parse reads the body, the JSON guard refuses it: ${code}`)
  const a = JSON.stringify(streamed.sort())
  const b = JSON.stringify(buffered.map(c => shown(c)).sort())
  violation(a === b, () => `the JSON guard found ${clip(a)}, the buffered scan ${clip(b)}`)
}

// ---------------------------------------------------------------------------------------------
// Multipart guard

interface GuardInput {
  spec: MultipartSpec
  chunks: Chunking
  allowed: 'none' | 'token' | 'other'
  smallHeaders: boolean
  everySplit: boolean
}

interface GuardPrepared {
  input: GuardInput
  chunks: Buffer[]
  options: MultipartGuardOptions
}

interface GuardRun { out: Buffer, error?: unknown }

/** Feeds chunks to a fresh guard; resolves with what it forwarded and the error it emitted, if any. */
export function runGuard (chunks: readonly Buffer[], options: MultipartGuardOptions): Promise<GuardRun> {
  return new Promise(resolve => {
    const guard = createMultipartGuard(options)
    const out: Buffer[] = []
    let settled = false
    const finish = (error?: unknown): void => {
      if (settled) return
      settled = true
      resolve(error === undefined ? { out: Buffer.concat(out) } : { out: Buffer.concat(out), error })
    }
    guard.on('data', (chunk: Buffer) => { out.push(chunk) })
    guard.on('error', error => finish(error))
    guard.on('end', () => finish())
    for (const chunk of chunks) guard.write(chunk)
    guard.end()
  })
}

function verdict (run: GuardRun): string {
  return run.error === undefined ? 'ok' : run.error instanceof IdentityError ? run.error.code : `non-IdentityError ${String(run.error)}`
}

function checkGuardRun (body: Buffer, run: GuardRun, what: string): void {
  if (run.error === undefined) {
    violation(run.out.equals(body), () => `${what}: forwarded ${run.out.length} bytes that differ from the ${body.length} sent`)
    return
  }
  violation(run.error instanceof IdentityError && isErrorCode(run.error.code), () => `${what}: the guard emitted ${run.error instanceof Error ? run.error.stack : String(run.error)}`)
  violation(run.out.length < body.length && body.subarray(0, run.out.length).equals(run.out), () => `${what}: erred with ${verdict(run)} after forwarding ${run.out.length} of ${body.length} bytes${body.subarray(0, run.out.length).equals(run.out) ? '' : ' that differ from the body'}`)
}

/** The token the body's first job-token-looking value holds, so 'token' inputs repeat the allowed credential. */
function firstToken (body: Buffer): string {
  const m = /glcbt-[A-Za-z0-9_-]*/.exec(body.toString('latin1'))
  return m === null ? 'glcbt-64_AAAAaaaa1111aaaa' : m[0]
}

export const multipartGuardTarget: FuzzTarget<GuardInput, GuardPrepared, GuardRun> = {
  name: 'multipart-guard',
  covers: 'createMultipartGuard over random chunkings: errors are IdentityError only, forwarded bytes equal the input when it passes and are a strict prefix when it errs, the verdict does not depend on the chunking',
  arbitrary: fc.record({
    spec: multipartBody(),
    chunks: chunking(),
    allowed: fc.constantFrom('none', 'none', 'token', 'other'),
    smallHeaders: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    everySplit: fc.oneof({ weight: 15, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
  }),
  async: true,
  prepare: input => {
    const options: MultipartGuardOptions = {
      boundary: input.spec.boundary,
      ...(input.allowed === 'token' ? { allowedToken: firstToken(input.spec.body) } : input.allowed === 'other' ? { allowedToken: 'glcbt-not-in-the-body' } : {}),
      ...(input.smallHeaders ? { maxHeaderBytes: 32 } : {})
    }
    return { input, chunks: splitBody(input.spec.body, input.chunks), options }
  },
  exec: p => runGuard(p.chunks, p.options),
  check: async (p, run) => {
    const body = p.input.spec.body
    checkGuardRun(body, run, `${p.chunks.length} chunks`)
    if (p.chunks.length > 1) {
      const whole = await runGuard(body.length === 0 ? [] : [body], p.options)
      checkGuardRun(body, whole, 'one chunk')
      sameVerdict(p.chunks, run, verdict(whole))
    }
    if (p.input.everySplit && body.length <= 400) {
      const expected = verdict(await runGuard(body.length === 0 ? [] : [body], p.options))
      for (let at = 1; at < body.length; at++) {
        const chunks = [body.subarray(0, at), body.subarray(at)]
        const split = await runGuard(chunks, p.options)
        checkGuardRun(body, split, `split at ${at}`)
        sameVerdict(chunks, split, expected)
      }
    }
  },
  show: input => `boundary ${clip(input.spec.boundary, 80)} allowed ${input.allowed} smallHeaders ${input.smallHeaders} chunks ${input.chunks.mode}:${JSON.stringify(input.chunks.cuts).slice(0, 120)} body ${clipBytes(input.spec.body)}`,
  size: input => input.spec.body.length
}

/** The chunked run must reach the one-chunk verdict. */
function sameVerdict (chunks: readonly Buffer[], run: GuardRun, expected: string): void {
  const got = verdict(run)
  if (got !== expected) throw new PropertyViolation(`verdict depends on the chunking: ${expected} in one chunk, ${got} in ${chunks.length} (cut at ${chunkOffsets(chunks).join(',').slice(0, 200)})`)
}

function chunkOffsets (chunks: readonly Buffer[]): number[] {
  const out: number[] = []
  let at = 0
  for (const c of chunks.slice(0, -1)) { at += c.length; out.push(at) }
  return out
}

// ---------------------------------------------------------------------------------------------
// GraphQL multipart bodies

/**
 * The GraphQL reading of a multipart body (readGraphqlParams: Rack 2.2's parser, the doubtful
 * parts): never throws, one reading at least, names as strings. A body Rack reads must give
 * Rack's fields (test/rack/graphql-multipart.slow.ts compares them with Rack itself).
 */
export const graphqlMultipartTarget: FuzzTarget<MultipartSpec, MultipartSpec, GraphqlParams> = {
  name: 'graphql-multipart',
  covers: 'readGraphqlParams on multipart bodies (Rack 2.2\'s parser, doubtful parts): never throws, at least one reading, the doubtful names are strings',
  arbitrary: multipartBody(),
  async: false,
  exec: input => readGraphqlParams(input.body, { method: 'POST', query: '', contentType: `multipart/form-data; boundary=${input.boundary}`, bodyReadable: true }),
  check: (input, params) => {
    violation(Array.isArray(params.readings) && params.readings.length >= 1, 'no reading')
    violation(params.doubtful.every(n => typeof n === 'string'), 'a doubtful name that is not a string')
    // A blank body gives no parameters; any other keeps its text for the lexical checks.
    violation(input.body.toString('utf8').trim() === '' || params.broken.length >= 1, 'the multipart text is not kept for the lexical checks')
  },
  show: input => `boundary ${clip(input.boundary, 80)} body ${clipBytes(input.body)}`,
  size: input => input.body.length
}

// ---------------------------------------------------------------------------------------------
// GraphQL documents

const DOCUMENT_CODES = new Set(['GRAPHQL_DOCUMENT_TOO_LARGE', 'GRAPHQL_DOCUMENT_TOO_DEEP', 'GRAPHQL_DOCUMENT_INVALID', 'GRAPHQL_DOCUMENT_AMBIGUOUS'])

/**
 * The document reader a fine-grained token's GraphQL request goes through (after
 * escape_single_quoted_newlines, as GitLab reads it): never throws, a known code and a short
 * message, and never a document where graphql-ruby would cut the text into other tokens.
 */
export const graphqlDocumentTarget: FuzzTarget<string, string, DocumentResult> = {
  name: 'graphql-document',
  covers: 'readDocument (limits, lexer scan, graphql-ruby\'s differences, parse, shape) on generated GraphQL text: never throws, a known refusal or a document, never a document graphql-ruby would cut otherwise',
  arbitrary: graphqlDocument(),
  async: false,
  prepare: text => escapeSingleQuotedNewlines(text),
  exec: text => readDocument(text),
  check: (text, result) => {
    if (result.ok) {
      violation(rubyLexDifference(text) === null, 'a document graphql-ruby would cut into other tokens was read')
      violation(/^[0-9a-f]{64}$/.test(result.hash), 'no sha256 for a document')
      return
    }
    violation(DOCUMENT_CODES.has(result.code), () => `unknown code ${result.code}`)
    violation(typeof result.message === 'string' && result.message.length > 0 && result.message.length < 600, () => `message is not a short text: ${clip(result.message)}`)
  },
  show: input => clip(input),
  size: input => input.length
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const TARGETS: ReadonlyArray<FuzzTarget<any, any, any>> = [canonicalizeTarget, routerTarget, credentialsTarget, bodyScanTarget, multipartGuardTarget, graphqlMultipartTarget, graphqlDocumentTarget]
