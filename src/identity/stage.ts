// The identity stages of the request path, as one call: find the credential (headers, query,
// body) → resolve the job behind a job token. Returns "continue" with what to forward, or a deny
// with its answer. Requests without a job token continue untouched: not this stage's business.

import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { conanSearchKind, type CatalogRoute } from '../catalog/types.ts'
import type { ErrorCode } from '../errors.ts'
import { identityAnswer, type Answer } from './answers.ts'
import { bodyParamNames, createBodyScanner, inflatesGzipJson, parsesUntypedJson, rackReadsPostBody, readsUntypedJson, type BodyPlan, type BodyScanOptions } from './body-scan.ts'
import { authorizationTooManyCommas, collectCredentials, decideCredential, headerMethodOverride, methodOverride, uploadOperationsReachable, type Credential, type CredentialSource, type MethodParam } from './credentials.ts'
import { LookupDropped, type Waiter } from '../waiters.ts'
import { IdentityError, type JobIdentity, type JobResolver } from './types.ts'

export interface IdentityStageOptions {
  readonly resolver: JobResolver
  readonly body?: BodyScanOptions
}

export interface IdentityInput {
  readonly canonical: { readonly method: string, readonly path: string, readonly query: string }
  readonly route: CatalogRoute | null
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders?: readonly string[]
  /** The client connection (the request's socket): a token's hash is computed once per connection. */
  readonly connection?: object | null
  /** The client waiting for the answer: a job's resolution is given up once every client waiting for it has gone. */
  readonly client?: Waiter | undefined
  /** The request body stream (the IncomingMessage itself); null: none (forward-auth), read as empty. */
  readonly body: Readable | null
  /** Called just before the body is read for inspection (the proxy answers `Expect: 100-continue` there). */
  readonly beforeBodyRead?: () => void
  /**
   * On API paths: Rack::MethodOverride routes a POST as its `_method` body parameter or its
   * X-HTTP-Method-Override header (credentials.ts). Called with that method when there is one,
   * before any credential is decided; returns the route matched for it, which this stage then
   * uses. A method override that cannot be known for sure is refused.
   */
  readonly methodOverride?: (method: string) => CatalogRoute | null
  /**
   * An API path, or a path outside the root that holds /api/v4 (where GitLab serves its API if
   * its root is not the gate's): GitLab's upload middleware could write an `operations`
   * parameter's members over the parameters its token finders read (credentials.ts,
   * uploadOperationsReachable), which the gate reads in GraphQL requests only
   * (src/admin/graphql.ts): refused here.
   */
  readonly api?: boolean
  /**
   * Whether the request, routed as `method`, is a package write the catalog does not list (an
   * MLflow model registry change: src/routing/package-fallback.ts), which the users' package rules
   * hold as they hold the catalog's package writes. Asked only where no catalog route matched.
   */
  readonly uncataloguedPackageWrite?: (method: string) => boolean
}

export type ForwardBody =
  /**
   * Forward this stream. For a large multipart or JSON body it is the guard the request is piped
   * through: if it errors (an IdentityError), abort the upstream request and answer its code.
   */
  | { readonly kind: 'stream', readonly stream: Readable, readonly guarded: boolean }
  /** The body was read for inspection: forward exactly these bytes. */
  | { readonly kind: 'buffered', readonly bytes: Buffer }

/**
 * The names of the parameters GitLab reads from the body (body-scan.ts, bodyParamNames): none for
 * a body it takes no parameters from; null for one whose names the gate has not read (a streamed
 * form, JSON or multipart body, a multipart one), any name then possible. Read only on routes a
 * later stage asks them of (readsBodyParams): elsewhere every body counts as none.
 */
export type BodyParams = ReadonlySet<string> | null

export type IdentityOutcome =
  /**
   * No job token. `credentials` are the other credentials found (headers, query, an inspected
   * body): the users' package rules check the role of whoever GitLab would take the request from.
   */
  | { readonly kind: 'none', readonly body: ForwardBody, readonly credentials: readonly Credential[], readonly bodyParams: BodyParams }
  | {
    readonly kind: 'job'
    readonly identity: JobIdentity
    readonly token: string
    readonly source: CredentialSource
    readonly basicAuth: boolean
    readonly body: ForwardBody
    /** Every credential found (headers, query, an inspected body), the job token's included. */
    readonly credentials: readonly Credential[]
    readonly bodyParams: BodyParams
  }
  /**
   * `reason` is for logs: it never holds a token. `body`: what to forward should the refusal be
   * shadowed (GATE_MODE=shadow), set once the body was read or guarded; whoever answers the
   * refusal instead destroys a stream there.
   */
  | { readonly kind: 'deny', readonly code: ErrorCode, readonly reason: string, readonly answer: Answer, readonly body?: ForwardBody }

export interface IdentityStage {
  /** Without a promise when nothing is read or resolved (a request without a body, a cached token). */
  run (input: IdentityInput): IdentityOutcome | Promise<IdentityOutcome>
}

export function createIdentityStage (options: IdentityStageOptions): IdentityStage {
  const { resolver } = options
  const scanner = createBodyScanner(options.body)

  const deny = (code: ErrorCode, reason: string, route: CatalogRoute | null, body?: ForwardBody): IdentityOutcome =>
    body === undefined ? { kind: 'deny', code, reason, answer: identityAnswer(code, route) } : { kind: 'deny', code, reason, answer: identityAnswer(code, route), body }

  /**
   * Hot path: a request whose body is not read (most are) and whose job token is cached is
   * identified without a promise; reading a body or resolving a token awaits.
   */
  function run (input: IdentityInput): IdentityOutcome | Promise<IdentityOutcome> {
    const method = input.canonical.method
    const header = input.methodOverride === undefined ? null : headerMethodOverride(input)
    if (header?.kind === 'ambiguous') return deny('METHOD_OVERRIDE_AMBIGUOUS', header.reason, input.route)
    // Hot path: the route is asked only of a compressed body.
    let plan = scanner.plan(input.headers, method, input.headers['content-encoding'] !== undefined && input.route !== null && inflatesGzipJson(input.route))
    if (plan.kind === 'rejected') return deny(plan.code, 'request body cannot be inspected', input.route)
    if (input.api === true) {
      const formOrJson = plan.kind === 'buffer' ? plan.type !== 'multipart' : plan.kind === 'stream' && plan.type === 'json'
      const operations = uploadOperationsReachable(input, formOrJson)
      if (operations !== null) return deny('UPLOAD_OPERATIONS_PARAMETER', operations, input.route)
      // A multipart body's `operations` part, buffered or streamed: refused as it is read.
      if (plan.kind === 'buffer' && plan.type === 'multipart') plan = { ...plan, refuseOperations: true }
      else if (plan.kind === 'stream' && plan.type !== 'json') plan = { ...plan, refuseOperations: true }
    }
    // A body without a type where GitLab reads none as JSON (an upload Workhorse takes, a route
    // that reads no body credential): one that is no JSON passes, as forward-auth lets it.
    if (plan.kind === 'stream' && plan.type === 'json' && plan.untyped === true && input.route !== null && !readsUntypedJson(input.route)) plan = { ...plan, lenient: true }
    if (plan.kind === 'buffer' || (plan.kind === 'stream' && plan.type === 'json' && plan.readFirst === true)) return readThenIdentify(input, plan, header)
    return identify(input, plan, header, null, NO_CREDENTIALS, ABSENT, input.body, plan.kind === 'stream')
  }

  /** Reads a body to inspect (whole, or a chunked JSON body up to the limit), then identify(). */
  async function readThenIdentify (input: IdentityInput, plan: Exclude<BodyPlan, { kind: 'rejected' }>, header: HeaderOverride): Promise<IdentityOutcome> {
    const method = input.canonical.method
    const body = input.body ?? Readable.from([])
    input.beforeBodyRead?.()
    if (plan.kind === 'buffer') {
      const inspected = await scanner.read(plan, body)
      if (inspected.kind === 'rejected') return deny(inspected.code, 'request body cannot be inspected', input.route)
      const methodParam = rackReadsPostBody(input.headers['content-type'], method) ? inspected.methodParam : ABSENT
      return await identify(input, plan, header, inspected.bytes, inspected.credentials, methodParam, body, false)
    }
    // A chunked JSON body that ends within the limit is read whole, as a declared one is: a job
    // token in it then identifies the request instead of being refused by the guard.
    const head = await scanner.readFirst(body)
    if (head.kind === 'rejected') return deny(head.code, 'request body cannot be inspected', input.route)
    if (head.kind === 'buffered') return await identify(input, plan, header, head.bytes, head.credentials, ABSENT, body, false)
    // What was read, then the rest.
    return await identify(input, plan, header, null, NO_CREDENTIALS, ABSENT, head.stream, true)
  }

  /**
   * The credentials (headers, query, and those of an inspected body), the body to forward, then
   * the job behind a job token. `buffered`: the inspected bytes; `source`: the body as it reaches
   * the guard (the request itself, or what readFirst() read then the rest; null: no body);
   * `streamed`: whether it is guarded while it streams.
   */
  function identify (input: IdentityInput, plan: Exclude<BodyPlan, { kind: 'rejected' }>, header: HeaderOverride, buffered: Buffer | null, bodyCredentials: readonly Credential[], methodParam: MethodParam, source: Readable | null, streamed: boolean): IdentityOutcome | Promise<IdentityOutcome> {
    const method = input.canonical.method
    let { route } = input
    let routedMethod = method
    if (header !== null && input.methodOverride !== undefined) {
      const routed = methodOverride(method, header, methodParam)
      if (routed.kind === 'ambiguous') return deny('METHOD_OVERRIDE_AMBIGUOUS', routed.reason, route)
      if (routed.kind === 'method' && routed.method !== method) {
        route = input.methodOverride(routed.method)
        routedMethod = routed.method
      }
    }
    // Conan routes read Basic credentials differently: collected once the route is known. A first
    // word of too many commas is refused (below, with the body) without reading its credentials.
    const routed = route === input.route ? input : { ...input, route }
    const tooManyCommas = authorizationTooManyCommas(routed)
    const found = tooManyCommas ? [] : collectCredentials(routed)
    const credentials: Credential[] = bodyCredentials.length === 0 ? found : [...found, ...bodyCredentials]

    const credential = decideCredential(credentials)
    const token = credential.kind === 'job_token' ? credential.token : undefined
    let body: ForwardBody
    if (buffered !== null) {
      body = { kind: 'buffered', bytes: buffered }
    } else if (plan.kind === 'stream' && streamed) {
      // A package write must know its caller before the body goes upstream (the users' package
      // rules check the caller's role), so no credential may hide in a streamed body there: a
      // write the catalog does not list (an MLflow registered-model delete) is held to them too.
      const packageWrite = route === null
        ? input.uncataloguedPackageWrite?.(routedMethod) === true
        : route.packageFormat !== undefined && route.packageOperation !== 'read'
      // A `_method` in a streamed body would change the route after it was decided: refused there.
      const g = scanner.guard(plan, token, packageWrite, header !== null && method === 'POST')
      // The guard may fail at any moment from here on (while the job is resolved, while the
      // grants are read), before anyone else listens: without a listener of its own, its error
      // would be an uncaught exception that ends the process. Its failure is kept on the stream
      // (`errored`) and answered by whoever forwards the body.
      g.on('error', () => {})
      const from = source ?? Readable.from([])
      from.on('error', err => g.destroy(err))
      from.pipe(g)
      body = { kind: 'stream', stream: g, guarded: true }
    } else {
      body = source === null ? NO_BODY : { kind: 'stream', stream: source, guarded: false }
    }
    const bodyParams = paramsOf(plan, buffered, streamed, route)
    // Refused with the body it came with: a shadowed refusal forwards the request as received.
    if (tooManyCommas) return deny('CREDENTIAL_AMBIGUOUS', 'Authorization whose first word joins more lines than are read', route, body)
    if (credential.kind === 'ambiguous') return deny('CREDENTIAL_AMBIGUOUS', `several credentials: ${credential.sources.join(', ')}`, route, body)
    if (credential.kind === 'none') return { kind: 'none', body, credentials, bodyParams }

    const job = (identity: JobIdentity): IdentityOutcome =>
      ({ kind: 'job', identity, token: credential.token, source: credential.source, basicAuth: credential.basicAuth, body, credentials, bodyParams })
    const failed = (err: unknown): IdentityOutcome => {
      // Given up, its clients gone: nobody to answer (src/gate/pipeline.ts).
      if (err instanceof LookupDropped) throw err
      const failure = err instanceof IdentityError ? err : new IdentityError('IDENTITY_LOOKUP_FAILED', 'job resolver failed unexpectedly', { cause: err })
      return deny(failure.code, failure.message, route, body)
    }
    const cached = resolver.cached?.(credential.token, input.connection)
    if (cached !== undefined) return job(cached)
    let resolving: Promise<JobIdentity>
    try {
      resolving = resolver.resolve(credential.token, input.client)
    } catch (err) {
      return failed(err)
    }
    return resolving.then(job, failed)
  }

  return { run }
}

/**
 * Routes whose project GitLab may take from a body parameter the path does not hold (Conan's
 * instance API reads `params[:id]`: pipeline.ts, namesConanProject; its searches read `q`,
 * conanInstanceSearch and conanProjectSearch): the only ones whose body parameter names are read.
 */
export const readsBodyParams = (route: CatalogRoute): boolean => route.projectFrom === 'conan_username' || conanSearchKind(route) !== null

/** A body GitLab takes no parameters from. */
export const NO_PARAMS: ReadonlySet<string> = new Set()

/**
 * The names of the body's parameters: read from the inspected bytes; unknown for a body that
 * streams where GitLab parses it; none where GitLab takes no parameters from it (no body, a type
 * it does not parse, an untyped body on a route whose API does not read such a body as JSON).
 */
function paramsOf (plan: Exclude<BodyPlan, { kind: 'rejected' }>, buffered: Buffer | null, streamed: boolean, route: CatalogRoute | null): BodyParams {
  // Hot path: an inspected body is parsed again only where its names decide anything.
  if (route === null || !readsBodyParams(route)) return NO_PARAMS
  if (buffered !== null) return bodyParamNames(plan.kind === 'buffer' ? plan.type : 'json', buffered, plan.kind === 'buffer' && plan.untyped === true)
  if (plan.kind !== 'stream' || !streamed) return NO_PARAMS
  return plan.type === 'json' && plan.untyped === true && route !== null && !parsesUntypedJson(route) ? NO_PARAMS : null
}

type HeaderOverride = Exclude<ReturnType<typeof headerMethodOverride>, { kind: 'ambiguous' }> | null

const NO_CREDENTIALS: readonly Credential[] = Object.freeze([])
const ABSENT: MethodParam = Object.freeze({ kind: 'absent' })
/** What a request without a body forwards (nothing: the listeners send no body for it). */
const NO_BODY: ForwardBody = Object.freeze({ kind: 'buffered', bytes: Buffer.alloc(0) })
