// Enforcement of fine-grained personal access tokens at `/api/graphql` (docs/graphql.md).
//
// GitLab checks a fine-grained token in its GraphQL types and mutations: each one GitLab's docs
// page lists carries the permission and boundary it needs (`authorize_granular_token`, read by
// Gitlab::Graphql::Authz::GranularScopeAuthorization), and a type or mutation that carries none
// is refused to such a token. The gate decides the same before GitLab runs anything:
// - the token is found where GitLab's GraphqlController reads one (findGraphqlToken); requests
//   without one, with a job token, a legacy PAT or an OAuth token pass untouched;
// - every reading GitLab could make of the request (src/admin/graphql.ts) is checked; in each,
//   the operations GitLab runs (operationName, else the document's only operation, else all);
// - explainGraphql names what an operation touches (with GATE_GRAPHQL_SCHEMA: types and nested
//   fields; without: mutations and root fields); anything not in the catalog is refused, and
//   every touch needs its permission at its boundary (checkPermission).
// A refusal is answered as GitLab's GraphQL answers one: HTTP 200, `data: null` and an error with
// `extensions.code`; a batch is answered whole by the gate when any operation in it is refused.
//
// Hot path: runs for every GraphQL request that carries a personal access token. Documents are
// parsed once per text (documents.ts's cache) and an operation's analysis once per document,
// operation and the values of its declared variables (targets come from variables).

import { Kind, type DocumentNode, type GraphQLSchema } from 'graphql'
import { LRUCache } from 'lru-cache'
import type { Logger } from 'pino'
import { findGraphqlToken } from '../admin/graphql-credentials.ts'
import { doubtfulMessage, gitlabDocument, graphqlReadings, MAX_QUERY_SIZE, normalizeVariables, queriesTooLarge, type GraphqlOperation, type GraphqlParams, type GraphqlReading } from '../admin/graphql.ts'
import { errors, GateError, type ErrorCode } from '../errors.ts'
import type { HeaderSource } from '../identity/credentials.ts'
import { loggedPath, maskedTokens } from '../text.ts'
import type { Boundary, GraphqlCatalog } from './catalog.ts'
import type { DocumentCache } from './documents.ts'
import { explainGraphql, GraphqlCatalogIndex, GraphqlDocumentError, type BoundaryTarget, type GraphqlExplanation, type OperationExplanation, type Touch } from './explain.ts'
import type { FreshLookups, PermissionVerdict } from './permission-check.ts'
import type { FineGrainedScopes, TokenScopeResolver, TokenScopes } from './token-scopes.ts'
import { LookupDropped, type Waiter } from '../waiters.ts'

// ---------------------------------------------------------------------------------------------
// Finding the token: src/admin/graphql-credentials.ts, shared with the users' model registry check.

export { findGraphqlToken, type GraphqlToken } from '../admin/graphql-credentials.ts'

// ---------------------------------------------------------------------------------------------
// Deciding

/** One GraphQL error as GitLab answers it, with the gate's `extensions`. */
export interface GraphqlErrorBody {
  readonly message: string
  readonly extensions: {
    readonly code: ErrorCode
    readonly permission: string | null
    readonly boundary: Boundary | null
    /** What was refused: `mutation vulnerabilityCreate`, `field Query.echo`, `type Issue`. */
    readonly refused?: string
    readonly target?: string
    readonly operationName?: string | null
  }
}

/** GitLab's answer to a batch over its query size (GraphqlController#limit_query_size). */
const BATCH_TOO_LARGE = `Query too large: the queries of this batch hold more than ${MAX_QUERY_SIZE} characters together, and GitLab runs none of them`

/** Why an operation was refused, for the answer, the log and the metrics. */
interface Refusal {
  readonly code: ErrorCode
  readonly message: string
  readonly permission: string | null
  readonly boundary: Boundary | null
  readonly refused?: string
  readonly target?: BoundaryTarget | null
}

export type EnforceResult =
  /**
   * Not a fine-grained token (or none): GitLab decides, the request passes untouched.
   * `ciUserAccessToken`: the password of Basic under `gitlab-ci-token` is an access token GitLab
   * describes and its GraphQL takes; the job-token stages are not to read it as a job's.
   */
  | { readonly kind: 'pass', readonly ciUserAccessToken?: true }
  /** A fine-grained token allowed: forward. */
  | { readonly kind: 'allow', readonly ciUserAccessToken?: true }
  /** Refused: answer `body` with HTTP 200, as GitLab's GraphQL does. */
  | { readonly kind: 'deny', readonly body: unknown, readonly code: ErrorCode, readonly permission: string | null, readonly boundary: Boundary | null }

export type DecisionLabel = 'allow' | 'deny' | 'would_deny' | 'error'

export interface EnforcerOptions {
  /** Throws a GateError when GitLab cannot tell (503, 502) or will not describe the token (403). */
  readonly scopes: TokenScopeResolver
  /** A touch's permissions (any one boundary suffices) at its target; throws GateError when a lookup fails. */
  /** `fresh`: the request's own lookups, where a mutation's targets and their groups are looked up anew. */
  /** `client`: the request's; a lookup every client waiting for has gone is given up (LookupDropped). */
  readonly checkPermission: (scopes: FineGrainedScopes, needs: Touch['permissions'], target: BoundaryTarget | null, fresh?: FreshLookups, client?: Waiter) => Promise<PermissionVerdict>
  readonly documents: Pick<DocumentCache, 'parse'>
  readonly catalog: GraphqlCatalog
  /** GitLab's schema (GATE_GRAPHQL_SCHEMA): types and nested fields are checked too. */
  readonly schema?: GraphQLSchema
  readonly logger: Logger
  /** Counts a decision (src/metrics.ts); `permission` is a catalog name, `none` or `not_in_catalog`. */
  readonly onDecision?: (decision: DecisionLabel, reason: ErrorCode | 'GRAPHQL_PERMISSIONS_GRANTED', permission: string) => void
  /** Analyses kept (per document, operation and variables). Default 2,000. */
  readonly analysisCacheSize?: number
  /** GATE_MODE=shadow: a refusal is logged and counted as `would_deny`, and the request forwarded. */
  readonly shadow?: boolean
}

export interface GraphqlEnforcer {
  /**
   * GitLab's GraphQL request (classified `gitlab`): pass, allow or deny. Throws GateError when
   * GitLab cannot be asked. `partial`: the body was over the limit, and `params` hold only the
   * URL's parameters and, for `multipart`, the parts complete in the bytes read; a fine-grained
   * token's request that these do not decide is refused (413). `client`: the request's (none: one
   * that never goes); the token's lookup is given up once every client waiting for it has gone
   * (LookupDropped).
   */
  enforce (request: HeaderSource, params: GraphqlParams, requestId: string, partial?: 'multipart' | 'opaque', client?: Waiter): Promise<EnforceResult>
  /** Decides readings for a token already found (enforce() without the token search). */
  decide (token: string, readings: readonly GraphqlReading[], requestId: string, client?: Waiter): Promise<EnforceResult>
  /**
   * The gate's own operations (the allowlist mutations it answers, its own fields) for a user
   * caller's token: the permission each needs at its project, checked before the service runs.
   * `client`: as enforce() takes it.
   */
  decideGateOperation (token: string, document: DocumentNode, variables: Readonly<Record<string, unknown>>, operationName: string | undefined, requestId: string, client?: Waiter): Promise<EnforceResult>
}

/**
 * The gate's own fields (src/admin/graphql.ts) are not on GitLab's page; the closest catalog
 * permission, at the project named by the operation: changing the per package format rules and
 * `jobTokenPoliciesEnabled` is a change of the project's job token scope settings. Reading them
 * (`Project.jobTokenPermissions`) is reading the project: the gate's schema reaches a Project only
 * through `Query.project`, whose catalog entry already needs `read_project` at that project.
 */
const GATE_FIELD_PERMISSIONS: Readonly<Record<string, { readonly permission: string, readonly boundary: Boundary }>> = {
  'mutation updateJobTokenPermissions': { permission: 'update_job_token_scope', boundary: 'Project' }
}

const NO_SCHEMA_NOTE = ' The gate reads GraphQL without GitLab\'s schema here (GATE_GRAPHQL_SCHEMA is not set): only mutations and root fields are matched.'

function describe (target: BoundaryTarget | null | undefined, shown: (text: string) => string = text => text): string | undefined {
  if (target === null || target === undefined) return undefined
  if (target.path !== undefined) return `${target.kind} ${shown(target.path)}`
  // The model is the document's text too (`gid://gitlab/<model>/1`, or its base64), shown as the id is.
  return `${target.kind === 'object' ? shown(target.model ?? 'object') : target.kind} ${shown(target.id ?? '')}`.trim()
}

/** describe() as a log line may hold it: a token-shaped path segment, id or global ID model is `[token]`. */
const loggedTarget = (target: BoundaryTarget | null | undefined): string | undefined => describe(target, loggedPath)

/**
 * A refusal as GraphQL's error. The target and the operation's name are the document's text, and
 * a token pasted there (a `fullPath`, a global ID, `operationName`) is answered `[token]`, as the
 * log writes it: the answer is what a job's log prints.
 */
function errorOf (refusal: Refusal, operationName: string | null): GraphqlErrorBody {
  const target = loggedTarget(refusal.target)
  return {
    message: refusal.message,
    extensions: {
      code: refusal.code,
      permission: refusal.permission,
      boundary: refusal.boundary,
      ...(refusal.refused === undefined ? {} : { refused: refusal.refused }),
      ...(target === undefined ? {} : { target }),
      operationName: shownName(operationName)
    }
  }
}

const shownName = (operationName: string | null): string | null => operationName === null ? null : maskedTokens(operationName)

type Analysis =
  | { readonly ok: true, readonly operations: readonly OperationExplanation[] }
  | { readonly ok: false, readonly refusal: Refusal }

/**
 * Most the analyses kept may hold, in units of about 300 bytes: a touch (and 256 characters of
 * its path), or 256 characters of a refusal's message, of the document's text or of the key. An
 * analysis holds a touch per field of the document the catalog lists: kept by count alone, 2,000
 * analyses of 900 touches (28 KB documents sent with one fine-grained token) held 620 MiB. An
 * analysis larger than the whole is not kept.
 */
export const ANALYSIS_CACHE_UNITS = 20_000

/**
 * `retained`: the characters of its key and of its document's text. The names and texts an
 * analysis holds (the operation's name, aliases, paths) are V8 slices of the document's text,
 * which they keep whole, and the key holds the operation's name as sent: counted by touches
 * alone, 2,000 documents of 40 KB, each a 17-letter operation name and one field, held 74 MiB,
 * and with that name 39 KB long (and as `operationName`) 144 MiB.
 */
function analysisUnits (analysis: Analysis, retained: number): number {
  let units = 1 + (retained >> 8)
  if (!analysis.ok) return units + (analysis.refusal.message.length >> 8)
  for (const op of analysis.operations) {
    for (const touch of op.touches) units += 1 + (touch.path.length >> 8)
    units += op.unlisted.length + op.notInCatalog.length
  }
  return units
}

/** The variables an operation declares, from what was sent (the others cannot reach it). */
function declaredVariables (document: DocumentNode, operationName: string | null, given: Readonly<Record<string, unknown>>): Record<string, unknown> {
  // No prototype: a variable named `__proto__` is a variable like any other.
  const out = Object.create(null) as Record<string, unknown>
  for (const def of document.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue
    if (operationName !== null && def.name?.value !== operationName) continue
    for (const v of def.variableDefinitions ?? []) {
      const name = v.variable.name.value
      if (Object.hasOwn(given, name)) out[name] = given[name]
    }
  }
  return out
}

export function createGraphqlEnforcer (options: EnforcerOptions): GraphqlEnforcer {
  const index = new GraphqlCatalogIndex(options.catalog)
  const permissionNames: ReadonlySet<string> = new Set(options.catalog.entries.map(e => e.permission))
  const schema = options.schema
  const analyses = new LRUCache<string, Analysis>({ max: options.analysisCacheSize ?? 2000, maxSize: ANALYSIS_CACHE_UNITS })

  const count = (decision: DecisionLabel, reason: ErrorCode | 'GRAPHQL_PERMISSIONS_GRANTED', permission: string | null): void => {
    // Bounded: a catalog name, `none` or `not_in_catalog` (the gate's own mapping names catalog permissions too).
    const label = permission === null ? (reason === 'GRAPHQL_NOT_IN_CATALOG' ? 'not_in_catalog' : 'none') : permissionNames.has(permission) ? permission : 'none'
    options.onDecision?.(decision, reason, label)
  }

  /** What an operation touches (cached where the inputs repeat); no I/O. `textLength`: the document's text's. */
  const analyse = (document: DocumentNode, hash: string | null, textLength: number, operationName: string | null, variables: Readonly<Record<string, unknown>>, gate: boolean): Analysis => {
    const used = declaredVariables(document, operationName, variables)
    const usedJson = JSON.stringify(used)
    // Kept for GitLab's documents only (the gate's own come without a hash), and not under a key
    // that would hold large values: such variables rarely repeat.
    const key = hash !== null && usedJson.length <= 4096 ? `${hash}\u0000${operationName ?? ''}\u0000${usedJson}` : null
    const cached = key === null ? undefined : analyses.get(key)
    if (cached !== undefined) return cached
    let explanation: GraphqlExplanation
    try {
      // The gate's own operations are read against its own small schema's roots: no GitLab schema.
      explanation = explainGraphql(document, index, {
        variables: used,
        ...(schema === undefined || gate ? {} : { schema }),
        ...(operationName === null ? {} : { operationName })
      })
    } catch (err) {
      if (!(err instanceof GraphqlDocumentError)) throw err
      const code: ErrorCode = /^no operation named/.test(err.message) ? 'GRAPHQL_OPERATION_NOT_FOUND' : 'GRAPHQL_DOCUMENT_INVALID'
      // The message quotes the document (an operation's name, a fragment's, the parser's reading).
      return { ok: false, refusal: { code, message: `The gate cannot read this GraphQL document: ${maskedTokens(err.message)}`, permission: null, boundary: null } }
    }
    let result: Analysis = { ok: true, operations: explanation.operations }
    for (const op of explanation.operations) {
      const missing = op.notInCatalog.filter(label => !(gate && GATE_FIELD_PERMISSIONS[label] !== undefined))
      if (missing.length > 0) {
        const what = missing[0]!
        result = {
          ok: false,
          refusal: {
            code: 'GRAPHQL_NOT_IN_CATALOG',
            message: `${what} is not available to fine-grained personal access tokens: GitLab's list of GraphQL permissions for them does not include it${missing.length > 1 ? ` (nor ${missing.slice(1).join(', ')})` : ''}.${schema === undefined && !gate ? NO_SCHEMA_NOTE : ''}`,
            permission: null,
            boundary: null,
            refused: what
          }
        }
        break
      }
    }
    if (key !== null) analyses.set(key, result, { size: analysisUnits(result, key.length + textLength) })
    return result
  }

  /** The touches of an analysed operation, the gate's own fields mapped to catalog permissions. */
  const touchesOf = (op: OperationExplanation, gate: boolean): readonly Touch[] => {
    if (!gate) return op.touches
    const touches = [...op.touches]
    for (const { label, target } of op.unlisted) {
      const mapped = GATE_FIELD_PERMISSIONS[label]
      if (mapped === undefined) continue
      touches.push({ kind: 'mutation', name: label.slice(label.indexOf(' ') + 1), path: label, permissions: [mapped], target })
    }
    return touches
  }

  /** Checks one operation (of a request, or of the gate's own); null when what GitLab would run is allowed. */
  /** `batch`: the operation is one of a batch, whose text GitLab parses without escaping newlines (gitlabDocument). */
  /** `fresh`: the request's lookups of its mutations' targets (FreshLookups), shared by its operations. */
  const checkOperation = async (scopes: FineGrainedScopes, operation: GraphqlOperation, gate: { document: DocumentNode, variables: Readonly<Record<string, unknown>> } | null, batch = false, fresh: FreshLookups = new Map(), client?: Waiter): Promise<Refusal | null> => {
    let document: DocumentNode
    // The gate's own documents are rare and parsed by the classifier: not cached here.
    let hash: string | null
    let textLength = 0
    let variables: Readonly<Record<string, unknown>>
    // No document: GitLab answers "No query string was present" and runs nothing.
    if (gate === null && operation.query.trim() === '') return null
    if (gate !== null) {
      document = gate.document
      hash = null
      variables = gate.variables
    } else {
      const text = gitlabDocument(operation.query, batch)
      const parsed = options.documents.parse(text)
      if (!parsed.ok) return { code: parsed.code, message: parsed.message, permission: null, boundary: null }
      document = parsed.document
      hash = parsed.hash
      textLength = text.length
      const normalized = normalizeVariables(operation.variables)
      if (normalized === null) return { code: 'GRAPHQL_VARIABLES_INVALID', message: errors.GRAPHQL_VARIABLES_INVALID.message, permission: null, boundary: null }
      variables = normalized
    }
    // graphql-ruby runs the operation named; without a name, the only one (several: GitLab
    // refuses, and the gate checks them all).
    const name = operation.operationName === null || operation.operationName === '' ? null : operation.operationName
    const analysis = analyse(document, hash, textLength, name, variables, gate !== null)
    if (!analysis.ok) return analysis.refusal
    for (const op of analysis.operations) {
      // A write's targets are asked of GitLab anew: the path a lookup kept named may be another
      // project's by now, or its group under another parent, and GitLab runs the mutation there.
      // Reads keep the lookups.
      const lookups = op.operation === 'mutation' ? fresh : undefined
      for (const touch of touchesOf(op, gate !== null)) {
        const verdict = await options.checkPermission(scopes, touch.permissions, touch.target, lookups, client)
        if (!verdict.ok) {
          return { code: 'GRAPHQL_PERMISSION_MISSING', message: verdict.message, permission: verdict.permission, boundary: verdict.boundary, refused: `${touch.kind} ${touch.name}`, target: touch.target }
        }
      }
    }
    return null
  }

  /** One reading's answer when refused, else null. */
  const checkReading = async (scopes: FineGrainedScopes, reading: GraphqlReading, client?: Waiter): Promise<{ body: unknown, refusal: Refusal } | null> => {
    // A batch GitLab runs nothing of is refused whole, in one error as GitLab answers it: answered
    // one result per operation, 65,000 operations of `{a}` (1 MiB) were a 12.5 MB answer.
    if (reading.batch && queriesTooLarge(reading.operations)) {
      const refusal: Refusal = { code: 'GRAPHQL_DOCUMENT_TOO_LARGE', message: BATCH_TOO_LARGE, permission: null, boundary: null }
      return { body: { errors: [errorOf(refusal, null)] }, refusal }
    }
    const refusals: Array<Refusal | null> = []
    // One lookup per path for the whole batch, however many of its mutations name it.
    const fresh: FreshLookups = new Map()
    for (const operation of reading.operations) {
      const refusal = await checkOperation(scopes, operation, null, reading.batch, fresh, client)
      refusals.push(refusal)
      // One refusal refuses the whole batch: the operations after it are not checked. Each may
      // cost a lookup in GitLab (a batch of 5,000 unknown projects once cost 5,000 calls).
      if (refusal !== null) break
    }
    const firstRefusal = refusals.find(r => r !== null)
    if (firstRefusal === undefined || firstRefusal === null) return null
    if (!reading.batch) return { body: { data: null, errors: [errorOf(firstRefusal, reading.operations[0]?.operationName ?? null)] }, refusal: firstRefusal }
    // A batch is answered whole: GitLab runs every operation of it, so none is forwarded.
    const body = reading.operations.map((op, i) => {
      const refusal = refusals[i]
      if (refusal !== null && refusal !== undefined) return { data: null, errors: [errorOf(refusal, op.operationName)] }
      return { data: null, errors: [{ message: errors.GRAPHQL_BATCH_NOT_RUN.message, extensions: { code: 'GRAPHQL_BATCH_NOT_RUN', permission: null, boundary: null, operationName: shownName(op.operationName) } }] }
    })
    return { body, refusal: firstRefusal }
  }

  /**
   * `enforced`: refused even in shadow mode. The gate's own operations change the gate's store,
   * which no shadow mode may open (its REST twins are enforced in every mode too).
   */
  const deny = (refusal: Refusal, body: unknown, requestId: string, enforced = false): EnforceResult => {
    const shadow = options.shadow === true && !enforced
    const decision: DecisionLabel = shadow ? 'would_deny' : 'deny'
    count(decision, refusal.code, refusal.permission)
    options.logger.info({
      request_id: requestId,
      graphql: true,
      decision,
      reason: refusal.code,
      permission: refusal.permission,
      boundary: refusal.boundary,
      refused: refusal.refused,
      // The target is the document's own text (a `fullPath` argument or variable): a token
      // passed there by mistake is not written whole.
      target: loggedTarget(refusal.target)
    }, shadow ? 'GraphQL request of a fine-grained personal access token would be refused (shadow mode): forwarded' : 'GraphQL request of a fine-grained personal access token refused')
    if (shadow) return ALLOW
    return { kind: 'deny', body, code: refusal.code, permission: refusal.permission, boundary: refusal.boundary }
  }

  /** What GitLab says the token is (cached); a lookup failure is counted and rethrown. */
  const scopesOf = async (token: string, requestId: string, client?: Waiter): Promise<TokenScopes> => {
    try {
      return await options.scopes.scopesOf(token, client)
    } catch (err) {
      // Given up, its clients gone: nobody to answer, nothing of the gate's failed.
      if (err instanceof LookupDropped) throw err
      const code = (err as { code?: ErrorCode }).code ?? 'GATE_INTERNAL_ERROR'
      // A token GitLab will not describe is refused on purpose (fail closed), not a failure to ask:
      // a deny, answered in any mode, as a body the gate cannot decide is.
      if (code === 'GRAPHQL_TOKEN_SCOPES_HIDDEN') {
        count('deny', code, null)
        options.logger.info({ request_id: requestId, graphql: true, decision: 'deny', reason: code }, 'GraphQL request refused: GitLab will not describe the access token\'s permissions, and no registration names it')
      } else count('error', code, null)
      throw err
    }
  }

  /** The token's scopes when fine-grained, else null; a lookup failure is counted and rethrown. */
  const fineGrained = async (token: string, requestId: string, client?: Waiter): Promise<FineGrainedScopes | null> => {
    const scopes = await scopesOf(token, requestId, client)
    return scopes.kind === 'fine_grained' ? scopes : null
  }

  /** Runs `fn` for a fine-grained token; a failure is counted and rethrown. */
  const withScopes = async (token: string, requestId: string, fn: (scopes: FineGrainedScopes) => Promise<EnforceResult>, client?: Waiter): Promise<EnforceResult> => {
    const scopes = await fineGrained(token, requestId, client)
    if (scopes === null) return PASS
    try {
      return await fn(scopes)
    } catch (err) {
      // Given up, its clients gone: nothing of the gate's failed.
      if (err instanceof LookupDropped) throw err
      count('error', (err as { code?: ErrorCode }).code ?? 'GATE_INTERNAL_ERROR', null)
      throw err
    }
  }

  const decide = async (token: string, readings: readonly GraphqlReading[], requestId: string, client?: Waiter): Promise<EnforceResult> => {
    return await withScopes(token, requestId, async scopes => {
      for (const reading of readings) {
        const refused = await checkReading(scopes, reading, client)
        if (refused !== null) return deny(refused.refusal, refused.body, requestId)
      }
      count('allow', 'GRAPHQL_PERMISSIONS_GRANTED', null)
      return ALLOW
    }, client)
  }

  /** enforce() once the token is found: every reading, or a large body's first parts. */
  const decideFound = async (token: string, params: GraphqlParams, requestId: string, partial: 'multipart' | 'opaque' | undefined, client?: Waiter): Promise<EnforceResult> => {
    // A JSON body GitLab's parser may read where the gate's does not: what GitLab runs is not in
    // any reading. (The identity stage refuses such a body too; this decision does not lean on it.)
    if (params.unparsedBody) {
      if (await fineGrained(token, requestId, client) === null) return PASS
      count('deny', 'BODY_NOT_PARSEABLE', null)
      options.logger.info({ request_id: requestId, graphql: true, decision: 'deny', reason: 'BODY_NOT_PARSEABLE' }, 'GraphQL request of a fine-grained personal access token refused: its JSON body does not parse')
      throw new GateError('BODY_NOT_PARSEABLE', '400 Bad request - this GraphQL request\'s JSON body does not parse as JSON, while GitLab\'s parser takes some of what JSON refuses (comments) and would run what it reads; send plain JSON')
    }
    const readings = graphqlReadings(params)
    // A large body is decided from its first parts only when they hold what GitLab runs.
    const undecidable = partial === 'opaque' || (partial === 'multipart' && !readings.some(r => r.operations.some(op => op.query.trim() !== '')))
    if (!undecidable) return await decide(token, readings, requestId, client)
    if (await fineGrained(token, requestId, client) === null) return PASS
    count('deny', 'GRAPHQL_FINE_GRAINED_BODY_TOO_LARGE', null)
    options.logger.info({ request_id: requestId, graphql: true, decision: 'deny', reason: 'GRAPHQL_FINE_GRAINED_BODY_TOO_LARGE' }, 'GraphQL request of a fine-grained personal access token refused: its body is over the limit')
    throw new GateError('GRAPHQL_FINE_GRAINED_BODY_TOO_LARGE')
  }

  return {
    decide,
    async enforce (request, params, requestId, partial, client) {
      // A part that could hide a token or a document from the gate: whatever the token (the
      // classifier refuses these bodies too; a large upload is decided here alone).
      if (params.doubtful.length > 0) {
        count('deny', 'GRAPHQL_AMBIGUOUS_REQUEST', null)
        throw new GateError('GRAPHQL_AMBIGUOUS_REQUEST', `400 Bad request - ${doubtfulMessage(params.doubtful)}`)
      }
      // A body GitLab reads otherwise than the gate can (Apollo's `operations` in Ruby's JSON):
      // refused by the classifier too, and here for a large upload, which it does not read.
      if (params.unreadable !== null) {
        count('deny', 'GRAPHQL_AMBIGUOUS_REQUEST', null)
        throw new GateError('GRAPHQL_AMBIGUOUS_REQUEST', `400 Bad request - ${params.unreadable}`)
      }
      const found = findGraphqlToken(request, params)
      if (found.kind === 'none' || found.kind === 'job_token') return PASS
      if (found.kind === 'ambiguous') {
        count('deny', 'CREDENTIAL_AMBIGUOUS', null)
        throw new GateError('CREDENTIAL_AMBIGUOUS')
      }
      // Basic `gitlab-ci-token:<password>`: GitLab's GraphQL takes the password as a personal
      // access token, the job-token stages as a job's token. One GitLab refuses as an access
      // token may be a job's (a token without the `glcbt-` mark): left to those stages, as any
      // job token here. One GitLab describes is decided here, and those stages are told so.
      if (found.ciUser === true && (await scopesOf(found.token, requestId, client)).kind === 'refused') return PASS
      const result = await decideFound(found.token, params, requestId, partial, client)
      return found.ciUser === true && result.kind !== 'deny' ? { kind: result.kind, ciUserAccessToken: true } : result
    },
    async decideGateOperation (token, document, variables, operationName, requestId, client) {
      return await withScopes(token, requestId, async scopes => {
        const operation: GraphqlOperation = { query: '', variables, operationName: operationName ?? null }
        const refusal = await checkOperation(scopes, operation, { document, variables }, false, new Map(), client)
        if (refusal !== null) return deny(refusal, { data: null, errors: [errorOf(refusal, operationName ?? null)] }, requestId, true)
        count('allow', 'GRAPHQL_PERMISSIONS_GRANTED', null)
        return ALLOW
      }, client)
    }
  }
}

const PASS: EnforceResult = Object.freeze({ kind: 'pass' })
const ALLOW: EnforceResult = Object.freeze({ kind: 'allow' })
