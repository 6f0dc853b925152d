// Forward-auth: the same stages as a decision endpoint for nginx auth_request, Traefik
// ForwardAuth and Envoy ext_authz. The original method and URI come from X-Original-Method and
// X-Original-URI (nginx), X-Original-URL (ingress-nginx's auth-url), or X-Forwarded-Method/-Uri
// (Traefik), from trusted peers only; else from the request itself (Envoy sends the original
// method and path). Nothing is proxied: the answer is 200 or the deny.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Admin } from '../admin/handler.ts'
import type { PeerCheck } from '../config.ts'
import { GateError } from '../errors.ts'
import { createBodyScanner, rackReadsPostBody, railsReadsJsonBody, readsUntypedJson, type BodyPlan } from '../identity/body-scan.ts'
import type { BodyBudget } from '../read-body.ts'
import { OVERRIDE_METHODS, normalizeParamName, queryPairs, uploadOperationsReachQuery } from '../identity/credentials.ts'
import { accessedProject } from '../routing/accessed.ts'
import { holdsApiSegments } from '../routing/canonical.ts'
import { webModelRegistryDelete, webModelRegistryDeleteOutsideRoot } from '../routing/package-fallback.ts'
import type { ForwardBody } from '../identity/stage.ts'
import { ClientWaiter } from '../waiters.ts'
import { hasBody } from './request.ts'
import { denyOf, newExchange, runStages, settle, type Deny, type Engine, type Exchange } from './pipeline.ts'
import type { RecordDecision } from './record.ts'
import { respond } from './respond.ts'

export interface ForwardAuthOptions {
  readonly engine: () => Engine
  readonly admin: Pick<Admin, 'owns'>
  /** Whether a peer is a trusted proxy (GATE_TRUSTED_PROXIES: addresses and CIDR ranges). */
  readonly trusted: PeerCheck
  readonly maxInspectedBodyBytes: number
  /** The gate's bound on body bytes held while clients send them (src/read-body.ts). */
  readonly bodyBudget?: BodyBudget
  /**
   * What a decision request without a body says of the original's (GATE_FORWARD_AUTH_BODIES):
   * nothing (`hidden`), what X-Original-Content-Length and X-Original-Transfer-Encoding state
   * (`declared`), or that there was none, since the proxy sends every body (`sent`).
   */
  readonly bodies?: 'hidden' | 'declared' | 'sent'
  /**
   * What names the request to decide (GATE_FORWARD_AUTH_ORIGINAL): the X-Original-* and
   * X-Forwarded-Uri/-Method headers always (`headers`), the check request's own line always
   * (`request-line`, Envoy's: the client's headers come with it and are never read), or the headers
   * where given, else the line (`auto`, the default).
   */
  readonly original?: 'auto' | 'headers' | 'request-line'
  readonly record: RecordDecision
}

export type ForwardAuthHandler = (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<void>

/**
 * The request target inside an absolute URL, as sent: ingress-nginx's auth-url sends
 * `X-Original-URL: $scheme://$http_host$request_uri`. Only the scheme and authority are cut off;
 * `new URL()` would resolve dot segments and re-encode, and the canonicalize stage must see the
 * target GitLab will see. Null when the value is not an http(s) URL.
 */
export function targetOfUrl (url: string): string | null {
  const m = /^https?:\/\/[^/?#\s]*(\/[^#]*)?$/i.exec(url)
  return m === null ? null : m[1] ?? '/'
}

/**
 * The original request as the front proxy names it. Every header given must name the same
 * method and the same target: a proxy sets only its own (ingress-nginx X-Original-URL, the
 * shipped nginx configuration X-Original-URI, Traefik X-Forwarded-Uri) and passes the client's
 * other headers on, so reading one by precedence would let a client choose what is decided.
 */
function originalRequest (header: (name: string) => string | undefined): { method?: string, target?: string } | 'conflict' {
  const methods = [header('x-original-method'), header('x-forwarded-method')].filter(v => v !== undefined)
  const url = header('x-original-url')
  const fromUrl = url === undefined ? undefined : targetOfUrl(url)
  if (fromUrl === null) return 'conflict'
  const targets = [header('x-original-uri'), fromUrl, header('x-forwarded-uri')].filter(v => v !== undefined)
  if (methods.some(m => m !== methods[0]) || targets.some(u => u !== targets[0])) return 'conflict'
  return { ...(methods[0] === undefined ? {} : { method: methods[0] }), ...(targets[0] === undefined ? {} : { target: targets[0] }) }
}

/**
 * Where GitLab reads a job token outside its REST API: git over HTTP and LFS under a repository's
 * `.git` path and the container registry's `/jwt/auth` (Gitlab::Auth.find_for_git_client), and
 * GraphQL (`/api/graphql` and `/api/glql`) under any relative URL root (the gate's own under
 * every root, admin.owns: refused elsewhere, API_PATH_OUTSIDE_ROOT).
 */
const NON_API_JOB_TOKEN_PATH = /\.git(?:\/|%2f|$)|\/jwt\/auth(?:[./]|$)|\/api\/(?:graphql|glql)(?:[./]|$)/i

/**
 * GitLab's Go middleware (lib/gitlab/middleware/go.rb) answers a request whose `go-get`
 * parameter is 1 on any path, before routing, and reads HTTP Basic there with
 * Gitlab::Auth.find_for_git_client (a job's token under `gitlab-ci-token`). Read as Rack reads
 * a name, more leniently (any case, any value): more lines refused, never fewer. The parameter is
 * ActionDispatch::Request#params, the body's as well as the query's: a line whose body Rack
 * parses (a form or multipart type, or a POST without one) or Rails does (a JSON type, on any
 * method) may hold it, whether the proxy sends that body or not, where its path can name a
 * project (PROJECT_PATH_REGEX: `namespace/project`, two segments or more; a proxy's own check
 * path, `/` or `/_job_token_gate`, names none).
 */
function holdsGoGet (method: string, path: string, query: string, contentType: string | undefined): boolean {
  if ((rackReadsPostBody(contentType, method) || railsReadsJsonBody(contentType)) && PROJECT_LIKE_PATH.test(path)) return true
  if (query === '') return false
  for (const [name] of queryPairs(query)) if (normalizeParamName(name).trim().toLowerCase() === 'go-get') return true
  return false
}
const PROJECT_LIKE_PATH = /^\/*[^/]+\/+[^/]/

/**
 * Envoy sends the original request line as the decision request's own, and passes on the client's
 * headers (with `allowed_headers` matching them all, which the gate needs to see credentials): a
 * client's X-Original-URI or X-Original-Method naming another request would be decided in its
 * place while Envoy forwards the real one. Every other proxy asks on a fixed path of its own (the
 * shipped nginx configuration /_job_token_gate, ingress-nginx and Traefik their auth URL's), never
 * a path GitLab acts on a job token at: a decision request on an API path, GraphQL (the gate's
 * own), a git, LFS or `/jwt/auth` path, a line with Go's `go-get` parameter, or the web UI's model
 * delete (held to the users' package rules for the session of its cookies), whose headers name
 * another request is refused.
 */
function sameAsOwnLine (original: ReturnType<typeof originalRequest>, req: IncomingMessage, engine: Engine, owns: Admin['owns']): ReturnType<typeof originalRequest> {
  if (original === 'conflict') return original
  const own = req.url ?? '/'
  // Headers naming the own line (or none: Envoy's usual case) need no reading of it.
  const differs = (original.method !== undefined && original.method !== req.method) || (original.target !== undefined && original.target !== own)
  if (!differs) return original
  const query = own.indexOf('?')
  // Read as GitLab reads it: `/%61pi/v4/...` is an API path (Grape matches a literal's escape),
  // and a line the canonicalizer refuses is none of the fixed paths proxies ask on.
  const line = engine.canonicalize(req.method ?? 'GET', own)
  const api = line.kind !== 'other' || holdsApiSegments(line.path) || holdsApiSegments(query === -1 ? own : own.slice(0, query))
  // Envoy's `/api/graphql` or `/acme/app.git/info/refs` is the request GitLab gets: deciding the
  // one the headers name let GraphQL and git over HTTP through undecided.
  const goGet = line.kind === 'other' && holdsGoGet(line.method, line.path, line.query, req.headers['content-type'])
  // Envoy's `DELETE /acme/lib/-/ml/models/7` is the model delete GitLab runs: deciding the read
  // the headers name let a Developer's session past the project's ml_model delete rule.
  const root = engine.options.relativeUrlRoot ?? ''
  const webDelete = line.kind === 'other' && (webModelRegistryDelete(line.method, line.path, root) !== null || webModelRegistryDeleteOutsideRoot(line.method, line.path, root))
  return api || owns(line) || goGet || webDelete || NON_API_JOB_TOKEN_PATH.test(line.path) ? 'conflict' : original
}

/**
 * The longest method a check request may name. No HTTP method is longer than 17 characters (IANA's
 * longest, UPDATEREDIRECTREF; Rails knows none past 16, BASELINE-CONTROL), and a front proxy passes
 * whatever the client put in its request line (nginx up to its 8 KiB line, Traefik and Envoy up to
 * the gate's 16 KiB of headers). Every decision keeps the method it was made for a while (the
 * decision log's repeat window, the router's matches of paths with a format), so made-up methods of
 * kilobytes, a few seconds of requests with no token, held hundreds of MiB.
 */
const MAX_METHOD_LENGTH = 32

/** GATE_FORWARD_AUTH_ORIGINAL=request-line: no header names the request. */
const NAMED_BY_LINE: ReturnType<typeof originalRequest> = Object.freeze({})

/** Reads a guarded body stream to its end; the guard's error, or null. Nothing is kept. */
async function readGuarded (body: ForwardBody | null): Promise<Error | null> {
  if (body?.kind !== 'stream' || !body.guarded) return null
  try {
    for await (const chunk of body.stream) void chunk
    return null
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err))
  }
}

export function createForwardAuth (options: ForwardAuthOptions): ForwardAuthHandler {
  const { trusted, record } = options
  const bodies = options.bodies ?? 'hidden'
  const originalFrom = options.original ?? 'auto'
  const bodyScanner = createBodyScanner({ maxBytes: options.maxInspectedBodyBytes, ...(options.bodyBudget === undefined ? {} : { budget: options.bodyBudget }) })

  /**
   * nginx's auth_request never sends the body. If the original request declares a body GitLab
   * reads parameters from (form, JSON, multipart; X-Original-Content-Length or
   * X-Original-Transfer-Encoding), a job token in it would go unchecked: such a request to a
   * route that accepts job tokens is refused, whatever credential is visible. No visible one
   * outranks the body: GitLab reads the `access_token` parameter, body included, first of all
   * (Doorkeeper's `from_access_token_param`, then Bearer), and takes a job token there on every
   * route that accepts job tokens (find_user_from_job_bearer_token) before it reads a PAT; a
   * `private_token` parameter shaped as a job token makes it skip the PAT lookup, after which
   * `job_token=` is read; and a deploy token, `token=` or Basic that finds nothing falls through
   * to the job token too (lib/api/api_guard.rb, lib/gitlab/auth/auth_finders.rb). A POST that
   * matches no such route may still be routed to one by the body's `_method`. Routes that declare
   * `authenticate_with` are the exception: GitLab reads their credentials from the headers and
   * the query string only (Gitlab::APIAuthentication::TokenLocator), never a body, so a body
   * hidden there holds nothing GitLab would authenticate, unless its `_method` moves the POST to
   * another route of the path, or GitLab's upload middleware writes its `operations` into the
   * query a route reads its token from (uploadOperationsReachQuery: the Terraform module
   * registry's and the virtual registries', listed or not).
   */
  function hiddenBodyMayHoldToken (x: Exchange, req: IncomingMessage, engine: Engine, plan: BodyPlan | null): boolean {
    if (plan === null) return false
    // A path outside the root that holds /api/v4, where GitLab serves its API if its root is not
    // the gate's: any route of it may read the body's token, as a visible one is refused there
    // (API_PATH_OUTSIDE_ROOT).
    if (x.requested.kind === 'other' && holdsApiSegments(x.requested.path)) return true
    if (x.match === null && !hiddenOverrideReachesRoute(x, engine, req.headers['content-type']) && !(x.requested.kind === 'api' && uploadOperationsReachQuery(req, null, x.requested.apiPath))) return false
    if (x.match?.route.authenticateWith === true && !hiddenOverrideReachesRoute(x, engine, req.headers['content-type'], 'POST') && !uploadOperationsReachQuery(req, x.match.route)) return false
    // A body without a type is the upload itself (`curl --upload-file`) but where GitLab reads
    // credentials from it as JSON: the proxy's identity stage asks the same (readsUntypedJson).
    return x.match === null || !(plan.kind === 'stream' && plan.type === 'json' && plan.untyped === true && !readsUntypedJson(x.match.route))
  }

  /**
   * How the gate would read a body it cannot see, as far as the decision request tells of it:
   * null where there is none, or none GitLab reads parameters from (not a form, JSON or
   * multipart body).
   */
  function hiddenBodyPlan (x: Exchange, req: IncomingMessage, askedElsewhere: boolean): BodyPlan | null {
    // Envoy's with_request_body with allow_partial_message sends only the first bytes of a larger
    // body, and says so: the rest is as hidden as a body nginx never sends (any client may set it:
    // it only makes the gate stricter). Envoy marks every check whose client request it buffered a
    // body of; a marked check without a body is `pack_as_bytes`, whose raw bytes Envoy's HTTP
    // client never sends (ext_authz_http_impl.cc sends `body` only): its Content-Length 0 says
    // nothing of the client's body. Nor does it of an upgrade request's (`Upgrade: websocket`),
    // which Envoy asks about at once, unmarked (ext_authz.cc buffers none), and then forwards with
    // its Content-Length and body: GitLab reads a POST's form there as any other.
    const marked = req.headers['x-envoy-auth-partial-body']
    const unbuffered = x.body === null && (marked !== undefined || req.headers.upgrade !== undefined)
    const partial = unbuffered || (x.body !== null && marked === 'true')
    if (x.body !== null && !partial) return null
    const chunked = !partial && req.headers['x-original-transfer-encoding'] !== undefined
    const length = partial ? 1 : originalLength(req, askedElsewhere)
    if (length === 0 && !chunked) return null
    const declared = { ...req.headers, 'content-length': String(length > 0 ? length : 1) }
    const plan = bodyScanner.plan(declared, x.method)
    return plan.kind === 'pass' ? null : plan
  }

  /**
   * Rack::MethodOverride routes a POST as the `_method` of its form or multipart body
   * (credentials.ts), which the gate cannot see here: the POST may be routed as any method of its
   * path. True when one of those routes takes job tokens and reaches more than the visible job
   * token's own job: a runner's artifact upload (POST /jobs/:id/artifacts with job :id's token)
   * could only become the download of that job's own artifacts.
   */
  function hiddenOverrideReachesRoute (x: Exchange, engine: Engine, contentType: string | undefined, matched?: 'POST'): boolean {
    const requested = x.requested
    if (requested.kind !== 'api' || requested.method !== 'POST' || !rackReadsPostBody(contentType, 'POST')) return false
    for (const method of OVERRIDE_METHODS) {
      if (method === matched) continue
      const match = engine.router.matchRequest({ ...requested, method: method === 'HEAD' ? 'GET' : method })
      if (match === null) continue
      const accessed = accessedProject(match)
      if (accessed.kind === 'token_job' || (accessed.kind === 'job' && accessed.jobId === x.identity?.jobId)) continue
      return true
    }
    return false
  }

  /**
   * The original body's length as far as the decision request tells it; 1 stands for "maybe
   * some". A missing X-Original-Content-Length is no statement that there was no body:
   * ingress-nginx sends none, nor does the shipped nginx configuration for an HTTP/2 request
   * without a Content-Length, and Traefik and Envoy send the body or nothing, never its length. A
   * client may send the header itself through a proxy that does not set it, so "no body" is
   * believed only where the operator says the proxy replaces it (`declared`) or sends every
   * body (`sent`); a stated length above 0 always counts, as it only makes the gate stricter.
   * `askedElsewhere`: the headers name another request than the check's own line, as a proxy
   * asking on a path of its own (nginx's /_job_token_gate) does.
   */
  function originalLength (req: IncomingMessage, askedElsewhere: boolean): number {
    const stated = req.headers['x-original-content-length']
    const length = typeof stated !== 'string' || !/^\d+$/.test(stated) ? null : Number(stated)
    if (length !== null && length > 0) return length
    if (bodies === 'sent') return 0
    // A check that is the request itself (Envoy's, under request-line or auto) carries the client's
    // X-Original-* headers, never the proxy's: only a proxy asking on a path of its own declares.
    if (bodies === 'declared' && length === 0 && askedElsewhere) return 0
    return 1
  }

  /**
   * The decision endpoint's own refusals, before and after the stages. A body not read to its end
   * (a guard that refused it early) is not drained: the connection closes after the answer, or the
   * proxy's next decision on it would wait behind the unread rest.
   */
  function refuse (x: Exchange, req: IncomingMessage, res: ServerResponse, requestId: string, deny: Deny, started: number, decidedAt?: number): void {
    settle(x, 'deny', deny.code, 'forward_auth')
    respond(res, requestId, deny, x.body !== null && !req.complete, true)
    record(x, requestId, started, deny.status, decidedAt)
  }

  return async (req, res, requestId) => {
    const started = performance.now()
    const peerTrusted = trusted(req.socket.remoteAddress)
    const header = (name: string): string | undefined => {
      const value = req.headers[name]
      return typeof value === 'string' && value !== '' ? value : undefined
    }
    const engine = options.engine()
    // Envoy's line is the request itself: whatever the client's headers name is never read.
    const original = originalFrom === 'request-line'
      ? NAMED_BY_LINE
      : originalFrom === 'headers' ? originalRequest(header) : sameAsOwnLine(originalRequest(header), req, engine, canonical => options.admin.owns(canonical))
    const given = original === 'conflict' || original.method !== undefined || original.target !== undefined
    const method = (original === 'conflict' ? undefined : original.method) ?? req.method ?? 'GET'
    const target = (original === 'conflict' ? undefined : original.target) ?? req.url ?? '/'
    // Computed once: the gate-endpoint check and the canonicalize stage read the same form.
    const canonical = engine.canonicalize(method, target)
    const x = newExchange(method, target, req.headers, req.rawHeaders, hasBody(req) ? req : null, canonical, undefined, false, req.socket, new ClientWaiter(res))
    if (given && !peerTrusted) {
      refuse(x, req, res, requestId, denyOf('FORWARD_AUTH_UNTRUSTED'), started)
      return
    }
    // The proxy's own check path is never the request: with nothing naming one, nothing is decided.
    if (originalFrom === 'headers' && original !== 'conflict' && original.target === undefined) {
      refuse(x, req, res, requestId, denyOf('FORWARD_AUTH_NO_ORIGINAL'), started)
      return
    }
    if (original === 'conflict') {
      // Some of these headers came from the client, not the proxy: none of them can be trusted.
      refuse(x, req, res, requestId, denyOf('FORWARD_AUTH_UNTRUSTED', { message: '403 Forbidden - X-Original-Method/X-Forwarded-Method or X-Original-URI/X-Original-URL/X-Forwarded-Uri name different requests, or another request than the decision request\'s own API, GraphQL or git path (or X-Original-URL is not an http(s) URL); the front proxy must set one of them and drop the client\'s' }), started)
      return
    }
    if (method.length > MAX_METHOD_LENGTH) {
      refuse(x, req, res, requestId, denyOf('FORWARD_AUTH_METHOD_TOO_LONG'), started)
      return
    }
    // The configuration API and GraphQL's allowlist mutations are answered by the gate itself,
    // on the API listener: allowing them here would let them reach GitLab's own allowlist.
    if (options.admin.owns(canonical)) {
      refuse(x, req, res, requestId, denyOf('FORWARD_AUTH_GATE_ENDPOINT'), started)
      return
    }
    // GitLab reads `private_token` and `access_token` from a form, JSON or multipart body before
    // the headers: the users' package rules must know where such a body went unseen.
    // Planned once: the stages change neither the method nor the headers it is planned from.
    const hidden = hiddenBodyPlan(x, req, originalFrom !== 'request-line' && original.target !== undefined && original.target !== (req.url ?? '/'))
    x.bodyHidden = hidden !== null
    const outcome = await runStages(x, engine)
    const decidedAt = performance.now()
    if (outcome.kind === 'gone') {
      // The proxy went away while the stages waited, and the lookup was dropped: nobody to answer.
      if (x.forwardBody?.kind === 'stream') x.forwardBody.stream.destroy()
      record(x, requestId, started, 0, decidedAt)
      return
    }
    if (outcome.kind === 'deny') {
      // npm shows a refusal's `error`, as the proxy answers it (proxy-listener.ts).
      const deny = x.match?.route.packageFormat === 'npm' ? { ...outcome.deny, echoAsError: true } : outcome.deny
      respond(res, requestId, deny, x.body !== null && !req.complete, true)
      record(x, requestId, started, outcome.deny.status, decidedAt)
      return
    }
    if (hiddenBodyMayHoldToken(x, req, engine, hidden)) {
      refuse(x, req, res, requestId, denyOf('BODY_NOT_VISIBLE'), started, decidedAt)
      return
    }
    // A body the proxy sends (Traefik's forwardBody, Envoy's with_request_body) that is too large
    // to read whole, or has no type, is checked by its guard only as it is read: GitLab gets the
    // whole body from the proxy, so it is read to the end before any answer.
    const bodyError = await readGuarded(x.forwardBody)
    if (bodyError !== null) {
      refuse(x, req, res, requestId, denyOf(bodyError instanceof GateError ? bodyError.code : 'BODY_NOT_PARSEABLE'), started, decidedAt)
      return
    }
    // No body: nginx's auth_request reads only the status and headers of the answer, and keeps
    // its connection to the gate for the next request only when there is no body left unread
    // (an allow with a body cost a new connection per request). Traefik and Envoy read no body
    // of a 2xx either.
    respond(res, requestId, {
      kind: 'json',
      status: 200,
      body: undefined,
      headers: { 'x-job-token-gate-decision': x.verdict, 'x-job-token-gate-reason': x.reason }
    })
    record(x, requestId, started, 200, decidedAt)
  }
}
