// The configuration API over GraphQL (`/api/graphql`), with the `graphql` package.
//
// The gate owns the job token allowlist, so every GraphQL request that could change GitLab's
// allowlist or scope, or that names the gate's own fields, is decided here and never forwarded:
// - the gate's fields (`jobTokenPermissions` on a project, `updateJobTokenPermissions`) and
//   GitLab's allowlist mutations (`ciJobTokenScopeAddProject`, `...AddGroupOrProject`,
//   `...UpdatePolicies`, `...RemoveProject`, `...RemoveGroup`) are answered from the gate's store
//   with the same service calls as the REST endpoints (validation, Maintainer check, audit);
// - any other `ciJobTokenScope*` mutation (autopopulation, ...) and `projectCiCdSettingsUpdate`
//   setting `inboundJobTokenScopeEnabled` are refused, naming the gate's REST endpoint;
// - a request mixing either with GitLab fields cannot be split safely: refused, naming them;
// - over GET (GitLab reads `?query=`), any of them is refused: mutations are POST-only.
// Everything else is GitLab's and passes through byte for byte.
//
// What GitLab executes is read as Rails and GitLab's GraphqlController read it: parameters from
// the URL query string override those of the body (`request_parameters.merge(query_parameters)`);
// bodies are JSON (an array is a batch, `_json`), form-encoded or multipart (Rack's nested
// names, `_json[][query]=` included; Apollo's `operations` field), `variables` may be a JSON
// string; documents go through graphql-ruby's `escape_single_quoted_newlines`. Where a request
// can be read in more than one way (Rack 2 splits the query string on `;` too, a body whose type
// GitLab may not parse), every reading is checked; a request is the gate's only where every
// reading that runs a document runs the same one, and one naming gate fields among readings that
// disagree is refused. Mutations are found at the mutation root through aliases, inline
// fragments and fragment spreads. A document or body that names these fields but cannot be
// parsed is refused.

import { buildSchema, execute, GraphQLError, Kind, Lexer, parse, Source, TokenKind, validate, valueFromASTUntyped, type DocumentNode, type Token, type FieldNode, type FragmentDefinitionNode, type GraphQLSchema, type SelectionSetNode, type ValueNode } from 'graphql'
import type { PolicyIndex } from '../catalog/policy-index.ts'
import type { ValidationIssue } from '../grants/errors.ts'
import { isFullPath, type AllowlistEntry, type EntryTargetType, type ProjectGrants } from '../grants/model.ts'
import { decodeFormComponent, normalizeParamName } from '../identity/credentials.ts'
import { goReadsMultipart, parseMultipartBoundary } from '../identity/body-scan.ts'
import { DEFAULT_MAX_JSON_DEPTH, nestsDeeperThan } from '../identity/json-guard.ts'
import { quoted, trimEnds } from '../text.ts'
import { doubtfulParts, rackMultipartFields } from '../identity/rack-multipart.ts'
import type { Caller } from './auth.ts'
import { errors, GateError } from '../errors.ts'
import { AdminError, type AdminService, type ProjectAccess } from './service.ts'
import { mergePackageRules, permissionsView } from './views.ts'

/** The gate's own fields: wherever they appear, the request is the gate's. */
export const GATE_FIELDS = ['jobTokenPermissions', 'updateJobTokenPermissions'] as const

/** GitLab's allowlist mutations the gate answers from its own store. */
export const ALLOWLIST_MUTATIONS = ['ciJobTokenScopeAddProject', 'ciJobTokenScopeAddGroupOrProject', 'ciJobTokenScopeUpdatePolicies', 'ciJobTokenScopeRemoveProject', 'ciJobTokenScopeRemoveGroup'] as const

/** Every mutation whose name starts so changes GitLab's job token allowlist. */
const ALLOWLIST_MUTATION_PREFIX = 'ciJobTokenScope'
/** Mutations that change the scope setting when given these input fields. */
const SCOPE_SETTING_MUTATIONS: ReadonlySet<string> = new Set(['projectCiCdSettingsUpdate', 'ciCdSettingsUpdate'])
const SCOPE_SETTING_FIELDS: readonly string[] = ['inboundJobTokenScopeEnabled', 'jobTokenScopeEnabled']
/**
 * A document can only be relevant if its text names one of these (GraphQL names are never
 * escaped). graphql-body.ts also looks for them in bodies over the limit, in escaped forms too.
 */
export const RELEVANT_TEXT = /ciJobTokenScope[A-Z]|jobTokenPermissions|updateJobTokenPermissions|[cC]iCdSettingsUpdate/

const SDL = `
  "Who may write or delete a format's packages: Maintainers only, or CI/CD job tokens too (within their allowlist policies)."
  enum JobTokenPackageLevel { MAINTAINER JOB_TOKEN_AND_MAINTAINER }

  type PackageFormatPermissions {
    format: String!
    read: Boolean!
    write: JobTokenPackageLevel!
    delete: JobTokenPackageLevel!
    "False when the project sets nothing for this format: GitLab's behaviour."
    configured: Boolean!
  }

  type JobTokenPermissions {
    packageRegistry: [PackageFormatPermissions!]!
    "GitLab's job_token_policies_enabled for this project alone, over its root namespace's (REST PUT /groups/:id/job_token_policies); null: the root namespace, else GATE_FINE_GRAINED_POLICIES, decides."
    jobTokenPoliciesEnabled: Boolean
  }

  type Project { id: ID! fullPath: ID! jobTokenPermissions: JobTokenPermissions }

  type Query { project(fullPath: ID!): Project }

  "One format's settings; an omitted action is left as it is, null resets it to GitLab's behaviour."
  input PackageFormatPermissionsInput {
    format: String!
    read: Boolean
    write: JobTokenPackageLevel
    delete: JobTokenPackageLevel
  }

  input UpdateJobTokenPermissionsInput {
    projectPath: ID!
    packageRegistry: [PackageFormatPermissionsInput!]!
    "Omitted: left as it is; null: back to GATE_FINE_GRAINED_POLICIES."
    jobTokenPoliciesEnabled: Boolean
    clientMutationId: String
  }

  type UpdateJobTokenPermissionsPayload {
    jobTokenPermissions: JobTokenPermissions
    errors: [String!]!
    clientMutationId: String
  }

  "GitLab's CiJobTokenScopePolicies enum values (READ_PACKAGES, ...); checked against the catalog's policies."
  scalar CiJobTokenScopePolicies
  scalar Time
  enum CiJobTokenScopeDirection { INBOUND OUTBOUND }

  type UserCore { id: ID! username: String }
  type CiJobTokenAccessibleProject { id: ID! fullPath: ID path: String }
  type CiJobTokenAccessibleGroup { id: ID! fullPath: ID path: String }
  union CiJobTokenScopeTarget = CiJobTokenAccessibleProject | CiJobTokenAccessibleGroup
  type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
  type CiJobTokenAccessibleProjectEdge { cursor: String! node: CiJobTokenAccessibleProject }
  type CiJobTokenAccessibleProjectConnection { count: Int! nodes: [CiJobTokenAccessibleProject] edges: [CiJobTokenAccessibleProjectEdge] pageInfo: PageInfo! }
  type CiJobTokenAccessibleGroupEdge { cursor: String! node: CiJobTokenAccessibleGroup }
  type CiJobTokenAccessibleGroupConnection { count: Int! nodes: [CiJobTokenAccessibleGroup] edges: [CiJobTokenAccessibleGroupEdge] pageInfo: PageInfo! }

  type CiJobTokenScopeType {
    inboundAllowlist: CiJobTokenAccessibleProjectConnection!
    groupsAllowlist: CiJobTokenAccessibleGroupConnection!
    inboundAllowlistCount: Int!
    groupsAllowlistCount: Int!
    inboundAllowlistAutopopulatedIds: [ID!]!
    groupAllowlistAutopopulatedIds: [ID!]!
  }

  type CiJobTokenScopeAllowlistEntry {
    sourceProject: Project!
    target: CiJobTokenScopeTarget
    direction: String
    defaultPermissions: Boolean
    jobTokenPolicies: [CiJobTokenScopePolicies!]
    addedBy: UserCore
    createdAt: Time!
    autopopulated: Boolean
  }

  input CiJobTokenScopeAddProjectInput { projectPath: ID! targetProjectPath: ID! direction: CiJobTokenScopeDirection clientMutationId: String }
  type CiJobTokenScopeAddProjectPayload { ciJobTokenScope: CiJobTokenScopeType errors: [String!]! clientMutationId: String }

  input CiJobTokenScopeAddGroupOrProjectInput {
    projectPath: ID!
    targetPath: ID!
    defaultPermissions: Boolean = true
    jobTokenPolicies: [CiJobTokenScopePolicies!] = []
    clientMutationId: String
  }
  type CiJobTokenScopeAddGroupOrProjectPayload { ciJobTokenScope: CiJobTokenScopeType ciJobTokenScopeAllowlistEntry: CiJobTokenScopeAllowlistEntry errors: [String!]! clientMutationId: String }

  input CiJobTokenScopeUpdatePoliciesInput {
    projectPath: ID!
    targetPath: ID!
    defaultPermissions: Boolean!
    jobTokenPolicies: [CiJobTokenScopePolicies!]!
    clientMutationId: String
  }
  type CiJobTokenScopeUpdatePoliciesPayload { ciJobTokenScopeAllowlistEntry: CiJobTokenScopeAllowlistEntry errors: [String!]! clientMutationId: String }

  input CiJobTokenScopeRemoveProjectInput { projectPath: ID! targetProjectPath: ID! direction: CiJobTokenScopeDirection clientMutationId: String }
  type CiJobTokenScopeRemoveProjectPayload { ciJobTokenScope: CiJobTokenScopeType errors: [String!]! clientMutationId: String }

  input CiJobTokenScopeRemoveGroupInput { projectPath: ID! targetGroupPath: ID! clientMutationId: String }
  type CiJobTokenScopeRemoveGroupPayload { ciJobTokenScope: CiJobTokenScopeType errors: [String!]! clientMutationId: String }

  type Mutation {
    updateJobTokenPermissions(input: UpdateJobTokenPermissionsInput!): UpdateJobTokenPermissionsPayload
    ciJobTokenScopeAddProject(input: CiJobTokenScopeAddProjectInput!): CiJobTokenScopeAddProjectPayload
    ciJobTokenScopeAddGroupOrProject(input: CiJobTokenScopeAddGroupOrProjectInput!): CiJobTokenScopeAddGroupOrProjectPayload
    ciJobTokenScopeUpdatePolicies(input: CiJobTokenScopeUpdatePoliciesInput!): CiJobTokenScopeUpdatePoliciesPayload
    ciJobTokenScopeRemoveProject(input: CiJobTokenScopeRemoveProjectInput!): CiJobTokenScopeRemoveProjectPayload
    ciJobTokenScopeRemoveGroup(input: CiJobTokenScopeRemoveGroupInput!): CiJobTokenScopeRemoveGroupPayload
  }
`

let schema: GraphQLSchema | null = null
function gateSchema (): GraphQLSchema {
  schema ??= buildSchema(SDL)
  return schema
}

// ---------------------------------------------------------------------------------------------
// Reading the request as GitLab would

/** The parts of an HTTP request to `/api/graphql` that GitLab reads parameters from. */
export interface GraphqlHttpRequest {
  /** The routing method: POST, or GET (HEAD included). */
  readonly method: string
  /** The raw URL query string (without '?'). */
  readonly query: string
  readonly contentType: string
  /** False when the body is not at hand: a body over the limit that is no upload, decided from the URL alone (handler.ts). */
  readonly bodyReadable: boolean
}

type Params = Record<string, unknown>

/** One GraphQL operation as GitLab's controller takes it from the parameters. */
export interface GraphqlOperation {
  /** The document as sent (before graphql-ruby's `escape_single_quoted_newlines`). */
  readonly query: string
  /** As sent: a hash, a JSON string (GitLab parses it), or anything else (GitLab refuses it). */
  readonly variables: unknown
  /** Rails' `permit` of a scalar: a string, or null when absent or not a scalar. */
  readonly operationName: string | null
}

/** What GitLab would execute from one reading of the parameters: one query, or a batch (`_json`). */
export interface GraphqlReading {
  readonly batch: boolean
  readonly operations: readonly GraphqlOperation[]
}

class RackError extends Error {}

function newParams (): Params {
  return Object.create(null) as Params
}

function isHash (value: unknown): value is Params {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Rack's `params_hash_has_key?`. */
function hashHasKey (hash: Params, key: string): boolean {
  if (key.includes('[]')) return false
  let h: unknown = hash
  for (const part of key.split(/[[\]]+/)) {
    if (part === '') continue
    if (!isHash(h) || !Object.hasOwn(h, part)) return false
    h = h[part]
  }
  return true
}

// Rack's `/^\[\]\[([^\[\]]+)\]$/` and `/^\[\](.+)$/` with Ruby's semantics: `^` and `$` are line
// anchors (a name with a LF in it matches on a later line) and `.` is anything but LF (CR too).
const RACK_CHILD_KEY = /(?:^|(?<=\n))\[\]\[([^[\]]+)\](?=\n|$)/
const RACK_CHILD_NAME = /(?:^|(?<=\n))\[\]([^\n]+)(?=\n|$)/
// The same at the start of the name only.
const RACK_CHILD_KEY_AT_START = /\[\]\[([^[\]]+)\](?=\n|$)/y
const RACK_CHILD_NAME_AT_START = /\[\]([^\n]+)(?=\n|$)/y

function atStart (pattern: RegExp, text: string): RegExpExecArray | null {
  pattern.lastIndex = 0
  return pattern.exec(text)
}

/**
 * Rack 2.2's `normalize_params`, line for line: `a[b][]=v` into nested hashes and arrays; null
 * where Rack returns nil (a name with no key, as `[[`), RackError where Rack raises. A value is
 * null for a name sent without `=` (Rack's nil). Checked against Rack itself:
 * test/rack/graphql-params.slow.ts.
 */
function normalizeParams (params: Params, name: string, value: unknown, depth: number, searched = false): unknown {
  if (depth <= 0) throw new RackError('too deep')
  const m = /^[[\]]*([^[\]]+)\]*/.exec(name)
  const key = m?.[1] ?? ''
  const after = m === null ? '' : name.slice(m[0].length)
  if (key === '') return value !== null && name === '[]' ? [value] : null
  if (after === '') {
    params[key] = value
  } else if (after === '[') {
    params[name] = value
  } else if (after === '[]') {
    const list = params[key] ?? (params[key] = [])
    if (!Array.isArray(list)) throw new RackError('expected an array')
    list.push(value)
  } else {
    // `searched`: the name is the end of one searched through without a match, so only its
    // first line may match. Searched again at every level, a name of 1 MB, 100 levels deep
    // (a form body at /api/graphql), took a second.
    const md = searched
      ? atStart(RACK_CHILD_KEY_AT_START, after) ?? atStart(RACK_CHILD_NAME_AT_START, after)
      : RACK_CHILD_KEY.exec(after) ?? RACK_CHILD_NAME.exec(after)
    if (md !== null) {
      const child = md[1]!
      const list = params[key] ?? (params[key] = [])
      if (!Array.isArray(list)) throw new RackError('expected an array')
      const last: unknown = list[list.length - 1]
      if (isHash(last) && !hashHasKey(last, child)) normalizeParams(last, child, value, depth - 1)
      else list.push(normalizeParams(newParams(), child, value, depth - 1))
    } else {
      const hash = params[key] ?? (params[key] = newParams())
      if (!isHash(hash)) throw new RackError('expected a hash')
      params[key] = normalizeParams(hash, after, value, depth - 1, true)
    }
  }
  return params
}

function nestedParams (pairs: Iterable<readonly [string, unknown]>): Params | null {
  const params = newParams()
  try {
    for (const [name, value] of pairs) normalizeParams(params, name, value, 100)
  } catch (err) {
    if (err instanceof RackError) return null
    throw err
  }
  return params
}

/** A name sent without `=` has the value null (Rack's nil; GitLab reads it as absent). */
function * formPairs (text: string, separator: RegExp): Iterable<[string, string | null]> {
  for (const piece of text.split(separator)) {
    if (piece === '') continue
    const eq = piece.indexOf('=')
    yield [decodeFormComponent(eq === -1 ? piece : piece.slice(0, eq)), eq === -1 ? null : decodeFormComponent(piece.slice(eq + 1))]
  }
}

/**
 * A query string or form body read as Rack reads it: Rack 3 splits on '&', Rack 2 on '&' and ';'.
 * Both readings are returned when they differ; `broken` holds the decoded text where Rack raises.
 */
function formReadings (text: string, broken: string[]): Params[] {
  const readings: Params[] = []
  for (const separator of [/& */, /[&;] */]) {
    const params = nestedParams(formPairs(text, separator))
    if (params === null) broken.push(decodeFormComponent(text))
    else readings.push(params)
    if (!text.includes(';')) break
  }
  return readings
}

/**
 * The fields of a multipart body as Rack 2.2 reads them (files left out: their values are no
 * text GitLab runs), or null where Rack raises; the doubtful names (doubtfulParts) that could
 * be GraphQL or token parameters go to `doubtful`, and those of parts that are not a file to every
 * parser to `odd`.
 */
function multipartPairs (body: Buffer, boundary: string, doubtful: string[], odd: string[]): Array<[string, string]> | null {
  for (const part of doubtfulParts(body, boundary)) {
    doubtful.push(...part.names.filter(isGraphqlPartName))
    if (!part.file) odd.push(...part.names)
  }
  const fields = rackMultipartFields(body, boundary)
  if (fields === null) return null
  const utf8 = (text: string): string => Buffer.from(text, 'latin1').toString('utf8')
  return fields.flatMap(f => f.value === null ? [] : [[utf8(f.name), utf8(f.value)] as [string, string]])
}

/** Parameter names (as normalizeParamName reads a name) GitLab reads a GraphQL request or a credential from. */
const GRAPHQL_PART_KEYS: ReadonlySet<string> = new Set(['query', 'variables', 'operationName', 'operations', 'map', '_json', 'extensions', 'private_token', 'access_token', 'bearer_token', 'job_token'])

/**
 * Whether GitLab could read a GraphQL request or a credential from a multipart part of this name:
 * such a part must be read alike by every parser (graphql-body.ts refuses one after the bytes a
 * large upload was decided from).
 */
export function isGraphqlPartName (name: string): boolean {
  return GRAPHQL_PART_KEYS.has(normalizeParamName(name))
}

function tryJson (text: string): unknown {
  const value = parseJson(text)
  return value === TOO_DEEP ? undefined : value
}

const TOO_DEEP = Symbol('too deep')

/**
 * JSON.parse's value, undefined where it throws, or TOO_DEEP: what reads a value recurses
 * (JSON.stringify of a reading, graphql-js), so a text nested deeper than the JSON guard reads is
 * not read (GitLab's parsers refuse far less deep: Ruby's at 100 levels).
 */
function parseJson (text: string): unknown {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  return nestsDeeperThan(text) ? TOO_DEEP : value
}

/** JSON text with `\uXXXX` escapes decoded, for the lexical check of a body JSON.parse refused. */
function unescapeJsonish (text: string): string {
  return text.replace(/\\u([0-9a-fA-F]{4})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
}

// Media types are compared before the first ';' or ',', as Rack's media_type and Rails'
// content_mime_type cut them, with Ruby's white space: `[ \t]`, the only ASCII white space
// Node leaves in a header value (JavaScript's `\s` also takes a no-break space, 0xA0, which
// Ruby's does not: to Rack, `application/x-www-form-urlencoded\xA0` is no form).
/**
 * The JSON bodies GitLab's Rails parses into parameters: config/initializers/mime_types.rb
 * registers :json for application/json and application/vnd.git-lfs+json only (Rails' own
 * text/x-json and application/jsonrequest are dropped with it).
 */
const RAILS_JSON_TYPE = /^[ \t]*application\/(?:json|vnd\.git-lfs\+json)[ \t]*(?:[;,]|$)/i
/** JSON by its type: also read as JSON where Rails does not parse it, beside the reading without it. */
const JSON_TYPE = /^[ \t]*(?:application\/(?:json|jsonrequest|[\w.+-]*\+json)|text\/x-json)[ \t]*(?:[;,]|$)/i
const FORM_TYPE = /^[ \t]*application\/x-www-form-urlencoded[ \t]*(?:[;,]|$)/i
/** The multipart subtypes Rack's #POST parses (form_data? and parseable_data?); others give it no parameters. */
export const RACK_MULTIPART_TYPE = /^[ \t]*multipart\/(?:form-data|related|mixed)[ \t]*(?:[;,]|$)/i
const MULTIPART_TYPE = /^[ \t]*multipart\//i
const GRAPHQL_TYPE = /^[ \t]*application\/graphql[ \t]*(?:;|$)/i
/**
 * A text Ruby's JSON parser (json 2.x, which Rails' JSON parameters use) reads past its first
 * character: after JSON's white space, a value's first character (NaN and Infinity included), or
 * a comment's `/`. Any other text it refuses there, as GitLab does.
 */
const RUBY_JSON_START = /^[ \t\r\n]*[{["\-0-9tfnNI/]/

/**
 * The body's parameters under every reading GitLab might apply to it. Rails parses JSON types
 * itself and leaves the rest to Rack: form bodies (also a POST without a Content-Type), and
 * multipart of any subtype; other types give no parameters.
 */
function bodyReadings (body: Buffer, request: GraphqlHttpRequest, broken: string[], doubtful: string[], unreadable: string[], odd: string[], unparsed: boolean[]): Params[] {
  if (!request.bodyReadable) return [newParams()]
  const text = body.toString('utf8')
  const contentType = trimEnds(request.contentType, ' \t')
  // An untyped POST body is a form to Rack::MethodOverride alone, in GitLab's middleware: it
  // reads `_method` with Rack's #POST and leaves the form it parsed for Rails to take over.
  // ActionDispatch's own form_data? wants a form type, so without that middleware GitLab reads
  // no parameter from the body. Both readings are checked (the URL's alone below).
  const untyped = contentType === '' && request.method === 'POST'
  const form = FORM_TYPE.test(contentType) || untyped
  // A blank body gives no parameters, but to Rack's form reading (`" "` is a parameter named " ").
  if (text.trim() === '' && !form) return [newParams()]
  const readings: Params[] = []
  let parsedAsDeclared = false
  const parsed = parseJson(text)
  if (parsed === TOO_DEEP) {
    unreadable.push(UNREADABLE_DEPTH)
    return [newParams()]
  }
  const json = parsed
  // Rails: a JSON body that is not an object is `_json` (an array is a batch).
  if (isHash(json)) readings.push(Object.assign(newParams(), json))
  else if (json !== undefined) readings.push(Object.assign(newParams(), { _json: json }))
  if (JSON_TYPE.test(contentType)) {
    // Read as GitLab reads it: another JSON type keeps the reading of a body Rails did not parse.
    if (RAILS_JSON_TYPE.test(contentType)) parsedAsDeclared = true
    // Ruby's JSON parsers accept what JSON.parse may not (comments, ...).
    if (json === undefined) broken.push(unescapeJsonish(text))
    // Then GitLab may run what such a body holds, which no reading here has (unless Ruby's
    // parser fails at its first byte too: a gzip stream, say).
    if (json === undefined && RAILS_JSON_TYPE.test(contentType) && RUBY_JSON_START.test(text)) unparsed.push(true)
  }
  if (form) {
    parsedAsDeclared = true
    // Rack's #POST drops one NUL that ends a form body ("Safari Ajax postings"), before parsing.
    readings.push(...formReadings(text.endsWith('\0') ? text.slice(0, -1) : text, broken))
  }
  if (MULTIPART_TYPE.test(contentType)) {
    if (RACK_MULTIPART_TYPE.test(contentType)) parsedAsDeclared = true
    // Multipart parsers disagree at the edges (delimiters without CRLF, filename forms): the
    // raw text is also checked for the names when no reading finds them.
    broken.push(body.toString('latin1'))
    const boundary = parseMultipartBoundary(contentType)
    // Rack parses this body (it is form_data? or parseable_data?) with a boundary the gate cannot
    // be sure of, or with none found reads it as a form (Rack 2.2's #POST): either way parameters
    // the gate does not see.
    if (boundary === null && (RACK_MULTIPART_TYPE.test(contentType) || goReadsMultipart(contentType))) unreadable.push(UNREADABLE_BOUNDARY)
    const pairs = boundary === null ? null : multipartPairs(body, boundary, doubtful, odd)
    const fields = pairs === null ? null : nestedParams(pairs)
    // Apollo's `operations` is applied over the merged parameters (apolloReading).
    if (fields !== null) readings.push(fields)
  } else if (goReadsMultipart(contentType)) {
    // Workhorse reads it as multipart and hands Rails the parts under a type of its own.
    unreadable.push(UNREADABLE_BOUNDARY)
  }
  // A bare document (application/graphql, or a body GitLab would not parse at all).
  if (GRAPHQL_TYPE.test(contentType) || (!parsedAsDeclared && json === undefined)) readings.push(Object.assign(newParams(), { query: text }))
  // A body of a type Rails does not parse, or one it fails on, leaves only the URL's parameters,
  // and so does an untyped one to a stack without Rack::MethodOverride.
  if (!parsedAsDeclared || untyped || readings.length === 0) readings.push(newParams())
  return readings
}

/** Rails' `permit` of a scalar: strings and numbers are kept (`to_s`), anything else is dropped. */
function scalar (value: unknown): string | null {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return null
}

function operationOf (params: Readonly<Params>): GraphqlOperation {
  return { query: scalar(params.query) ?? '', variables: params.variables, operationName: scalar(params.operationName) }
}

/**
 * One operation of a batch, as GitLab's `permitted_multiplex_params` keeps it: `variables: {}`
 * permits a hash only, so `variables` sent as a JSON string (or anything else) is dropped and
 * the operation runs with its variables' defaults. (A single query keeps the raw value, which
 * GitLab parses.)
 */
function batchOperationOf (params: Readonly<Params>): GraphqlOperation {
  const operation = operationOf(params)
  return isHash(operation.variables) ? operation : { ...operation, variables: undefined }
}

function effectiveOf (params: Readonly<Params>): GraphqlReading {
  // Rails' deep munge (NoNilParamEncoder) takes nils out of every parameter array: `[null]` in a
  // JSON body or `_json[]` without `=` is an empty list. GraphqlController multiplexes when
  // `params[:_json].present?`: an empty list is not, and the single query (the URL's, say) runs
  // instead. (Without the munge GitLab fails on a nil in the batch and runs nothing.)
  const batch = Array.isArray(params._json) ? params._json.filter(op => op !== null) : null
  if (batch !== null && batch.length > 0) return { batch: true, operations: batch.filter(isHash).map(batchOperationOf) }
  return { batch: false, operations: [operationOf(params)] }
}

/**
 * Whether GitLab runs nothing under this reading: no operation holds a document (GitLab fails a
 * blank query before it runs, as graphql-ruby finds no operation in it).
 */
function runsNothing (effective: GraphqlReading): boolean {
  return effective.operations.every(op => op.query.trim() === '')
}

// ---------------------------------------------------------------------------------------------
// Reading documents

/**
 * The text GitLab's GraphQL parses for an operation: a single query goes through
 * `escape_single_quoted_newlines` first (GraphqlController#query), each operation of a batch does
 * not (#multiplex_queries hands `_json[i][:query]` to graphql-ruby as sent). The escape toggles on
 * every `"`, one in a comment too, so `#"` at the end of a line makes it read the following lines as
 * one comment: escaping a batched operation would hide from the gate fields GitLab runs.
 */
export function gitlabDocument (query: string, batch: boolean): string {
  return batch ? query : escapeSingleQuotedNewlines(query)
}

/** graphql-ruby's `GraphQL::Language.escape_single_quoted_newlines`, which GitLab applies to a single query. */
export function escapeSingleQuotedNewlines (query: string): string {
  let out = ''
  let inside = false
  for (let i = 0; i < query.length;) {
    const c = query[i]!
    if (c === '\\' && query[i + 1] === '"') {
      out += '\\"'
      i += 2
    } else if (c === '"') {
      if (query.startsWith('"""', i)) {
        out += '"""'
        i += 3
      } else {
        inside = !inside
        out += c
        i++
      }
    } else if (c === '\n' || c === '\r') {
      out += inside ? (c === '\n' ? '\\n' : '\\r') : c
      i++
    } else {
      out += c
      i++
    }
  }
  return out
}

/** Where GitLab's GraphQL parser would read a document's tokens otherwise than the gate. */
export interface LexDifference {
  readonly line: number
  readonly what: string
}

/**
 * The first place where graphql-ruby (2.2 and later: GitLab's parser) would cut a document into
 * other tokens than graphql-js, or null. There the gate would check one document and GitLab run
 * another, so such a document is refused rather than read one way:
 * - a `#` comment ended by a lone carriage return with more than white space and comments after
 *   it on that line: graphql-ruby skips a comment up to a line feed only (`#.*$`, Ruby's `.`
 *   taking a CR), graphql-js ends it at a CR too, so what follows is code to the gate and
 *   comment to GitLab (`project(fullPath: "a/b" #<CR>, fullPath: "c/d"<LF>)` names one project
 *   to GitLab, another last to the gate; a block string opened there hides whole fields);
 * - a block string holding `\"""`: graphql-js unescapes it and reads on, graphql-ruby keeps the
 *   backslash and, before a fourth quote, ends the string there;
 * - a block string followed at once by `"`: graphql-ruby takes up to two more quotes into the
 *   string, graphql-js ends it at the first three.
 * Found by comparing graphql-ruby's lexer expressions with graphql-js on generated strings: with
 * these refused, both cut every generated block string at the same place. A text graphql-js
 * cannot lex is left to the parser's own error.
 */
export function rubyLexDifference (query: string): LexDifference | null {
  if (!mayLexDifferently(query)) return null
  const lexer = new Lexer(new Source(query))
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      const difference = lexDifferenceAt(query, token)
      if (difference !== null) return difference
    }
  } catch (err) {
    if (err instanceof GraphQLError) return null
    throw err
  }
  return null
}

/** Whether graphql-ruby could cut the text otherwise at all: only at a carriage return or a block string. */
export function mayLexDifferently (query: string): boolean {
  return query.includes('\r') || query.includes('"""')
}

/**
 * rubyLexDifference at one token graphql-js's lexer returned (not a comment): for a reader that
 * walks the tokens anyway (the document cache's scan).
 */
export function lexDifferenceAt (query: string, token: Token): LexDifference | null {
  // Only the comment right before a token can hide it: an LF after that comment ends any
  // comment before it too, and without one that comment runs over the token.
  const c = token.prev
  if (c !== null && c.kind === TokenKind.COMMENT && query.charCodeAt(c.end) === 13 && query.charCodeAt(c.end + 1) !== 10) {
    const lf = query.indexOf('\n', c.end)
    if (lf === -1 || token.start < lf) return { line: c.line, what: 'a comment ends at a carriage return, where GitLab\'s parser reads it on to the next line feed' }
  }
  if (token.kind !== TokenKind.BLOCK_STRING) return null
  if (query.slice(token.start + 3, token.end - 3).includes('\\"""')) return { line: token.line, what: 'a block string holds \\""", which GitLab\'s parser neither unescapes nor always reads as part of the string' }
  if (query.charCodeAt(token.end) === 34) return { line: token.line, what: 'a block string is followed at once by a quote, which GitLab\'s parser reads as part of the string' }
  return null
}

/** GitLab's `Gitlab::Graphql::Variables`: a JSON string (again and again) or a hash; null if invalid. */
export function normalizeVariables (raw: unknown): Params | null {
  if (raw === undefined || raw === null) return newParams()
  if (typeof raw === 'string') {
    if (raw.trim() === '') return newParams()
    const parsed = tryJson(raw)
    return parsed === undefined ? null : normalizeVariables(parsed)
  }
  return isHash(raw) ? raw : null
}

interface DocumentFacts {
  /** The gate's own fields found anywhere. */
  readonly gateFields: readonly string[]
  /** Allowlist mutations the gate answers, at the mutation root. */
  readonly allowlist: readonly string[]
  /** Mutations that change GitLab's allowlist or scope and that the gate does not answer. */
  readonly refused: readonly string[]
}

/**
 * Collects the fields selection sets select, through inline fragments and fragment spreads: each
 * walk() adds to `fields`; a fragment is followed once per walker (`followed`), so a cycle or a
 * fragment spread many times costs one walk.
 */
export function fieldWalker (document: DocumentNode): { readonly walk: (set: SelectionSetNode) => void, readonly fields: FieldNode[], readonly followed: Set<string> } {
  const fragments = new Map<string, FragmentDefinitionNode>()
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def)
  const fields: FieldNode[] = []
  const followed = new Set<string>()
  const walk = (set: SelectionSetNode): void => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) fields.push(selection)
      else if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet)
      else if (!followed.has(selection.name.value)) {
        followed.add(selection.name.value)
        const fragment = fragments.get(selection.name.value)
        if (fragment !== undefined) walk(fragment.selectionSet)
      }
    }
  }
  return { walk, fields, followed }
}

/** The fields selected at the mutation root, through inline fragments and fragment spreads. */
function mutationRootFields (document: DocumentNode): FieldNode[] {
  const { walk, fields, followed } = fieldWalker(document)
  for (const def of document.definitions) {
    if (def.kind === Kind.OPERATION_DEFINITION && def.operation === 'mutation') walk(def.selectionSet)
    // A fragment on Mutation counts even where no mutation spreads it.
    if (def.kind === Kind.FRAGMENT_DEFINITION && def.typeCondition.name.value === 'Mutation' && !followed.has(def.name.value)) {
      followed.add(def.name.value)
      walk(def.selectionSet)
    }
  }
  return fields
}

/** Whether a `projectCiCdSettingsUpdate` input sets the scope (a variable's value, or its default). */
function setsScope (field: FieldNode, document: DocumentNode, variables: Params | null): boolean {
  const input = field.arguments?.find(a => a.name.value === 'input')?.value
  if (input === undefined) return false
  const keysOf = (value: unknown): boolean => isHash(value) && SCOPE_SETTING_FIELDS.some(k => Object.hasOwn(value, k))
  if (input.kind === Kind.OBJECT) return input.fields.some(f => SCOPE_SETTING_FIELDS.includes(f.name.value))
  if (input.kind !== Kind.VARIABLE) return false
  const name = input.name.value
  // Unreadable variables: GitLab refuses them too, but the gate cannot tell; count it.
  if (variables === null) return true
  if (Object.hasOwn(variables, name)) return keysOf(variables[name])
  let found = false
  for (const def of document.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue
    for (const v of def.variableDefinitions ?? []) {
      if (v.variable.name.value === name && v.defaultValue !== undefined) found ||= keysOf(valueFromASTUntyped(v.defaultValue as ValueNode))
    }
  }
  return found
}

function documentFacts (document: DocumentNode, variables: Params | null): DocumentFacts {
  const gateFields = new Set<string>()
  const walkAll = (set: SelectionSetNode | undefined): void => {
    for (const selection of set?.selections ?? []) {
      if (selection.kind === Kind.FIELD && (GATE_FIELDS as readonly string[]).includes(selection.name.value)) gateFields.add(selection.name.value)
      if (selection.kind !== Kind.FRAGMENT_SPREAD) walkAll(selection.selectionSet)
    }
  }
  for (const def of document.definitions) if (def.kind === Kind.OPERATION_DEFINITION || def.kind === Kind.FRAGMENT_DEFINITION) walkAll(def.selectionSet)
  const allowlist = new Set<string>()
  const refused = new Set<string>()
  for (const field of mutationRootFields(document)) {
    const name = field.name.value
    if ((ALLOWLIST_MUTATIONS as readonly string[]).includes(name)) allowlist.add(name)
    else if (name.startsWith(ALLOWLIST_MUTATION_PREFIX)) refused.add(name)
    else if (SCOPE_SETTING_MUTATIONS.has(name) && setsScope(field, document, variables)) refused.add(`${name} (${SCOPE_SETTING_FIELDS.join(', ')})`)
  }
  return { gateFields: [...gateFields], allowlist: [...allowlist], refused: [...refused] }
}

interface OperationReading {
  readonly relevant: boolean
  readonly document?: DocumentNode
  readonly facts?: DocumentFacts
  /** The document names gate fields but does not parse. */
  readonly unparseable?: boolean
  /** The document names gate fields, and the reading's documents hold more characters than GitLab runs. */
  readonly tooLarge?: boolean
}

/**
 * GitLab's GraphqlController::MAX_QUERY_SIZE: it runs no query over 10,000 characters, nor a batch
 * whose queries together hold more (limit_query_size, "Query too large"), counted before the query
 * is escaped or parsed. The gate parses no more of a reading that names its fields: unbounded, a
 * 1 MiB document (330,000 one-letter fields in a fragment no operation spreads, which the
 * complexity bound does not count, or a single string or comment) was escaped, lexed, parsed and
 * validated whole before the caller was looked at, up to a second of CPU and a 160 MB syntax
 * tree, with no token at all.
 */
export const MAX_QUERY_SIZE = 10_000

/**
 * Whether the operations' queries hold more than MAX_QUERY_SIZE characters together, counted as
 * Ruby's String#size counts them: code points, so an astral character (two UTF-16 code units) is
 * one. A single query is measured as sent: GitLab measures it escaped (escapeSingleQuotedNewlines
 * only lengthens it), so a query refused here is refused by GitLab too.
 */
export function queriesTooLarge (operations: readonly GraphqlOperation[]): boolean {
  let units = 0
  for (const op of operations) units += op.query.length
  if (units <= MAX_QUERY_SIZE) return false
  let chars = 0
  for (const op of operations) {
    for (let i = 0; i < op.query.length; i++) {
      const c = op.query.charCodeAt(i)
      // The second half of a surrogate pair is no character more.
      if (c >= 0xdc00 && c <= 0xdfff && i > 0 && op.query.charCodeAt(i - 1) >= 0xd800 && op.query.charCodeAt(i - 1) <= 0xdbff) continue
      if (++chars > MAX_QUERY_SIZE) return true
    }
  }
  return false
}

function readOperation (operation: GraphqlOperation, batch: boolean): OperationReading {
  if (!RELEVANT_TEXT.test(operation.query)) return { relevant: false }
  let document: DocumentNode
  try {
    const text = gitlabDocument(operation.query, batch)
    // Read otherwise by GitLab: what it would run is not what the gate would parse.
    if (rubyLexDifference(text) !== null) return { relevant: true, unparseable: true }
    document = parse(text)
  } catch {
    return { relevant: true, unparseable: true }
  }
  const facts = documentFacts(document, normalizeVariables(operation.variables))
  return { relevant: facts.gateFields.length > 0 || facts.allowlist.length > 0 || facts.refused.length > 0, document, facts }
}

/**
 * The most complex query GitLab runs (app/graphql/gitlab_schema.rb: ADMIN_MAX_COMPLEXITY; 250
 * for other signed-in users, 200 without a user). Each of the gate's root fields asks GitLab
 * (the caller's role, a target, the path at a write), and graphql-js resolves a query's root
 * fields at once: without a bound, one 1 MiB document of aliased fields made thousands of calls.
 */
export const MAX_GATE_COMPLEXITY = 300

/**
 * GitLab's complexity for the operation that runs (`operationName`'s, the only one, or else the
 * most complex), each field counted 1 (GitLab's default, its least), `__typename` not at all,
 * a fragment each time it is spread (once per selection set: a repeat merges). Fields written
 * twice under one name, which GitLab merges, count twice. Counts stop past
 * `MAX_GATE_COMPLEXITY`; a fragment spread inside itself counts nothing (validation refuses it).
 */
export function gateComplexity (document: DocumentNode, operationName: string | undefined): number {
  const fragments = new Map<string, FragmentDefinitionNode>()
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def)
  const memo = new Map<string, number>()
  const open = new Set<string>()
  const cap = (n: number): number => Math.min(n, MAX_GATE_COMPLEXITY + 1)
  const count = (set: SelectionSetNode | undefined): number => {
    let n = 0
    const spread = new Set<string>()
    for (const selection of set?.selections ?? []) {
      if (selection.kind === Kind.FIELD) n += selection.name.value === '__typename' ? 0 : 1 + count(selection.selectionSet)
      else if (selection.kind === Kind.INLINE_FRAGMENT) n += count(selection.selectionSet)
      else {
        const name = selection.name.value
        if (spread.has(name)) continue
        spread.add(name)
        let m = memo.get(name)
        if (m === undefined) {
          if (open.has(name)) continue
          open.add(name)
          m = cap(count(fragments.get(name)?.selectionSet))
          open.delete(name)
          memo.set(name, m)
        }
        n += m
      }
      if (n > MAX_GATE_COMPLEXITY) return cap(n)
    }
    return n
  }
  const operations = document.definitions.filter(d => d.kind === Kind.OPERATION_DEFINITION)
  const named = operationName === undefined ? undefined : operations.find(o => o.name?.value === operationName)
  const run = named !== undefined ? [named] : operations
  return run.reduce((most, o) => Math.max(most, count(o.selectionSet)), 0)
}

// ---------------------------------------------------------------------------------------------
// Classification

export type RefusalCode = 'GRAPHQL_DOCUMENT_TOO_LARGE' | 'GRAPHQL_MIXED_OPERATION' | 'GRAPHQL_ALLOWLIST_MANAGED_BY_GATE' | 'GRAPHQL_GATE_FIELDS_OVER_GET' | 'GRAPHQL_AMBIGUOUS_REQUEST' | 'GRAPHQL_NOT_INSPECTABLE' | 'GRAPHQL_TOO_COMPLEX'

export type Classification =
  | { readonly kind: 'gitlab' }
  | { readonly kind: 'gate', readonly document: DocumentNode, readonly variables: Record<string, unknown> | null, readonly operationName: string | undefined, readonly problems: readonly GraphQLError[] }
  | { readonly kind: 'refused', readonly code: RefusalCode, readonly message: string }

const REST_HINT = 'the gate keeps the CI/CD job token allowlist and GitLab\'s own is not used: manage it with the gate\'s REST endpoints ' +
  '(POST /api/v4/projects/:id/job_token_scope/allowlist or groups_allowlist, PATCH or DELETE .../allowlist/:target_project_id or .../groups_allowlist/:target_group_id, ' +
  'PATCH /api/v4/projects/:id/job_token_scope with enabled for the scope setting, GET /api/v4/projects/:id/job_token_scope/usage for what jobs used)'

function refused (code: RefusalCode, message: string): Classification {
  return { kind: 'refused', code, message }
}

const DEFAULT_REQUEST: GraphqlHttpRequest = { method: 'POST', query: '', contentType: 'application/json', bodyReadable: true }

/**
 * Decides whose request a GraphQL request is: GitLab's (forward it), the gate's (answer it), or
 * refused. Every reading GitLab might make of the request is checked.
 */
export function classifyGraphql (body: Buffer, request: Partial<GraphqlHttpRequest> = {}): Classification {
  const req: GraphqlHttpRequest = { ...DEFAULT_REQUEST, ...request }
  return classifyParams(readGraphqlParams(body, req), req)
}

/**
 * Every way GitLab might read a GraphQL request's parameters: each body reading merged with
 * each reading of the URL's query string. Built once per request; the classifier and the
 * enforcement of fine-grained tokens (src/graphql/enforce.ts) both read it.
 */
export interface GraphqlParams {
  /** Rails' merged parameters, one per reading (not deduplicated). */
  readonly readings: readonly Readonly<Record<string, unknown>>[]
  /** Decoded texts of parts Rack or the JSON parser refuse, for the lexical checks. */
  readonly broken: readonly string[]
  /**
   * Names of multipart parts that parsers could read differently (doubtfulPartNames) and that
   * could be GraphQL or token parameters: GitLab's reading cannot be known, the request is refused.
   */
  readonly doubtful: readonly string[]
  /** Why GitLab's reading of the body cannot be known at all (a multipart boundary), or null. */
  readonly unreadable: string | null
  /**
   * A body of a JSON type GitLab's Rails parses that JSON.parse refused. Ruby's JSON takes some
   * of what it refuses (comments: `[{"query": "..."}] /* c *\/` is a batch to GitLab), so GitLab
   * may run what none of the readings holds: a reading that runs no document of its own.
   */
  readonly unparsedBody: boolean
}

export const UNREADABLE_BOUNDARY = 'the multipart boundary of this GraphQL request is missing, repeated or written so that parsers could read it differently (white space around its \'=\', a byte outside ASCII), and Rack would read parameters from the body that the gate cannot; write it as `; boundary=<value>`'

export const UNREADABLE_DEPTH = `the body of this GraphQL request is JSON nested deeper than ${DEFAULT_MAX_JSON_DEPTH} levels, which the gate does not read (GitLab's JSON parsers refuse far less deep); send a flatter body`

export const UNREADABLE_OPERATIONS = 'the `operations` parameter of this GraphQL multipart request is not JSON the gate can parse, while GitLab\'s upload middleware parses it with Ruby\'s JSON (which takes comments, for one) and runs what it holds; send `operations` as plain JSON'

export const UNREADABLE_MAP = 'the `map` of this GraphQL multipart request is not a JSON object naming uploaded files only: GitLab\'s upload middleware writes into the operation, at each path `map` lists, the parameter `map` names (wrapped as a file, which a global ID argument still takes as text), or parses `map` with Ruby\'s JSON, which takes what the gate cannot read; name only the file parts in `map`, as plain JSON'

/**
 * Whether the upload middleware could write into the operations anything but an uploaded file:
 * it merges `params[key]` at each path `map` lists for `key` (GraphQLDataBuilder#assign_file,
 * wrapped in a delegator that a global ID argument reads as the text it holds), where `params`
 * are the request's, URL and text fields included. The gate's readings leave uploads out, so a
 * key naming any parameter they hold names text; a `map` JSON.parse refuses may be read by Ruby's
 * parser, and one that is not an object (an array of pairs is read as pairs) is not read here.
 * Nor is a key JSON.parse leaves a lone surrogate in: Ruby's JSON reads such escapes otherwise
 * (json 2.6, Ruby 3.1's, joins a high surrogate with whatever `\u` escape follows, so
 * `"\ud800\u0041"` is U+10041, the parameter of a part so named; the newest versions refuse it).
 */
function mapWritesText (merged: Params): boolean {
  if (typeof merged.map !== 'string' || merged.map.trim() === '') return false
  const map = tryJson(merged.map)
  if (map === null) return false
  if (!isHash(map)) return true
  return Object.keys(map).some(key => LONE_SURROGATE.test(key) || (merged[key] !== undefined && merged[key] !== null))
}

/** A UTF-16 surrogate not in a pair. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * The parameter names the `map` of a GraphQL multipart request names, in any reading: each must
 * be an uploaded file (mapWritesText), so a part of one of these names that streams past the
 * bytes a large upload was decided from must be a file too (graphql-body.ts).
 */
export function mapKeys (params: Pick<GraphqlParams, 'readings'>): string[] {
  const keys = new Set<string>()
  for (const merged of params.readings) {
    const map = typeof merged.map === 'string' ? tryJson(merged.map) : undefined
    if (isHash(map)) for (const key of Object.keys(map)) keys.add(key)
  }
  return [...keys]
}

/**
 * Whether a multipart part of this name (as read from its header, one character a byte) may be
 * the parameter one of `keys` (a `map`'s keys, mapKeys) names. GitLab's upload middleware looks a
 * key up as written (`params[key]`), and Rack 2.2 files a part under the name's bytes read as
 * UTF-8 (a key `é` names a part `é`, sent as two bytes), at the top-level key its normalize_params
 * takes: `a[b]` fills the hash `a`, a name of white space before its bracket (` [b]`) the hash
 * ` `, `a[` stays `a[`. Names and keys are also compared normalised (` evil` as `evil`): more
 * parts taken for the keys' than Rack files under them, never fewer.
 */
export function mapKeyMatcher (keys: readonly string[]): (name: string) => boolean {
  if (keys.length === 0) return () => false
  const written = new Set(keys)
  const normalised = new Set(keys.map(normalizeParamName))
  return name => {
    const utf8 = Buffer.from(name, 'latin1').toString('utf8')
    return [name, utf8].some(n => {
      const top = rackTopLevelKey(n)
      return normalised.has(normalizeParamName(n)) || (top !== null && written.has(top))
    })
  }
}

/** The key Rack 2.2's normalize_params files a parameter of this name under at the top level, or null for none. */
function rackTopLevelKey (name: string): string | null {
  const m = /^[[\]]*([^[\]]+)\]*/.exec(name)
  if (m === null) return null
  return name.slice(m[0].length) === '[' ? name : m[1]!
}

/**
 * GitLab's upload middleware (the apollo_upload_server gem's ApolloUploadServer::Middleware, run
 * before the controller) on one merged reading: when the Content-Type contains
 * `multipart/form-data` and the parameters hold `operations` and `map` (from the body or the
 * URL), it parses `operations` with Ruby's JSON and writes each of its keys (an array or another
 * value: `_json`) with Rack's `update_param`, which replaces the key in the URL's parameters and
 * the body's alike: `operations` wins over both. Read for any multipart type and without `map`
 * too (only more readings); null when there is no `operations` to apply. `operations` that
 * JSON.parse refuses is `unreadable`: Ruby's parser may take it.
 */
function apolloReading (merged: Params, req: GraphqlHttpRequest, unreadable: string[]): Params | null {
  if (!/multipart\//i.test(req.contentType) || typeof merged.operations !== 'string' || merged.operations.trim() === '') return null
  const operations = tryJson(merged.operations)
  if (operations === undefined) {
    if (merged.map !== undefined && merged.map !== null) unreadable.push(UNREADABLE_OPERATIONS)
    return null
  }
  // Ruby's `JSON.parse("null")` is nil: the middleware changes nothing.
  if (operations === null) return null
  // The variables checked would not be the ones GitLab runs with.
  if (mapWritesText(merged)) unreadable.push(UNREADABLE_MAP)
  return Object.assign(newParams(), merged, isHash(operations) ? operations : { _json: operations })
}

export function readGraphqlParams (body: Buffer, request: Partial<GraphqlHttpRequest> = {}): GraphqlParams {
  const req: GraphqlHttpRequest = { ...DEFAULT_REQUEST, ...request }
  const broken: string[] = []
  const doubtful: string[] = []
  const unreadable: string[] = []
  const odd: string[] = []
  const unparsed: boolean[] = []
  const fromUrl = req.query === '' ? [] : formReadings(req.query, broken)
  // A query string Rack refuses fails the request in GitLab; the body is still checked.
  const urlReadings = fromUrl.length === 0 ? [newParams()] : fromUrl
  const readings: Params[] = []
  for (const fromBody of bodyReadings(body, req, broken, doubtful, unreadable, odd, unparsed)) {
    for (const url of urlReadings) {
      // Rails: the URL's parameters override the body's.
      const merged = Object.assign(newParams(), fromBody, url)
      readings.push(merged)
      // Then Apollo's `operations` overrides both.
      const apollo = apolloReading(merged, req, unreadable)
      if (apollo !== null) readings.push(apollo)
    }
  }
  // A part parsers read differently may be a file to Rack and the gate and a field to Workhorse
  // (Go drops a `filename*` of another charset and hands Rails the part as text), or a part only
  // one of them frames: a `map` naming one may have text written into the variables.
  if (odd.length > 0) {
    const namesMapKey = mapKeyMatcher(mapKeys({ readings }))
    if (odd.some(namesMapKey)) unreadable.push(UNREADABLE_MAP)
  }
  return { readings, broken, doubtful: [...new Set(doubtful)], unreadable: unreadable[0] ?? null, unparsedBody: unparsed.length > 0 }
}

/**
 * The distinct operations lists GitLab could execute (readings that agree count once). Where
 * they disagree, every one must be checked: the gate cannot tell which one GitLab will take.
 */
export function graphqlReadings (params: GraphqlParams): GraphqlReading[] {
  // Hot path: most requests have one reading, which needs no key (a JSON text of the document).
  if (params.readings.length === 1) return [effectiveOf(params.readings[0]!)]
  const distinct = new Map<string, GraphqlReading>()
  for (const merged of params.readings) {
    const effective = effectiveOf(merged)
    const key = JSON.stringify(effective)
    if (!distinct.has(key)) distinct.set(key, effective)
  }
  return [...distinct.values()]
}

/** Classification from readings already made (see classifyGraphql). */
export function classifyParams (params: GraphqlParams, request: Partial<GraphqlHttpRequest> = {}): Classification {
  const req: GraphqlHttpRequest = { ...DEFAULT_REQUEST, ...request }
  const broken = params.broken
  if (params.unreadable !== null) return refused('GRAPHQL_AMBIGUOUS_REQUEST', params.unreadable)
  if (params.doubtful.length > 0) return refused('GRAPHQL_AMBIGUOUS_REQUEST', doubtfulMessage(params.doubtful))
  const relevant = new Map<string, { effective: GraphqlReading, reads: OperationReading[] }>()
  // A reading that runs a document and names none of these fields: GitLab's operations. A JSON
  // body Ruby's parser may read where JSON.parse does not is one (what it runs is not known).
  let gitlabReading = params.unparsedBody
  for (const merged of params.readings) {
    const effective = effectiveOf(merged)
    // Characters first, as GitLab counts them, before anything escapes, lexes or parses the text.
    const oversize = queriesTooLarge(effective.operations)
    const reads = effective.operations.map((op): OperationReading => {
      if (!oversize) return readOperation(op, effective.batch)
      return RELEVANT_TEXT.test(op.query) ? { relevant: true, tooLarge: true } : { relevant: false }
    })
    if (reads.some(r => r.relevant)) relevant.set(JSON.stringify(effective), { effective, reads })
    else if (!runsNothing(effective)) gitlabReading = true
  }
  if (relevant.size === 0) {
    if (broken.some(text => RELEVANT_TEXT.test(text))) {
      return refused('GRAPHQL_NOT_INSPECTABLE', 'the gate cannot read this GraphQL request the way GitLab would (its parameters or body do not parse), and it names job token allowlist fields; send a JSON body')
    }
    return { kind: 'gitlab' }
  }
  if (req.method !== 'POST') {
    return refused('GRAPHQL_GATE_FIELDS_OVER_GET', `this ${req.method} request names job token allowlist mutations or the gate's fields; they are accepted only in POST requests with a JSON body`)
  }
  // The gate acts only where every reading that runs anything is the same: one reading naming
  // its fields beside another (other arguments, another operation, GitLab's operations) could
  // be the one GitLab runs, and neither answering nor forwarding is then what GitLab would do.
  if (relevant.size > 1 || gitlabReading) {
    return refused('GRAPHQL_AMBIGUOUS_REQUEST', 'this GraphQL request can be read in more than one way (URL parameters over body parameters, or a body GitLab may parse differently) and one of them names job token allowlist fields; send query, variables and operationName once, in a JSON body')
  }
  const [{ effective, reads }] = [...relevant.values()] as [{ effective: GraphqlReading, reads: OperationReading[] }]
  if (reads.some(r => r.tooLarge === true)) {
    return refused('GRAPHQL_DOCUMENT_TOO_LARGE', `this GraphQL request's documents hold more than ${MAX_QUERY_SIZE} characters and name job token allowlist fields; GitLab runs no query over ${MAX_QUERY_SIZE} characters, send a smaller one`)
  }
  const names = [...new Set(reads.flatMap(r => r.facts?.refused ?? []))]
  if (names.length > 0) return refused('GRAPHQL_ALLOWLIST_MANAGED_BY_GATE', `${names.join(', ')} would change GitLab's job token allowlist or scope; ${REST_HINT}`)
  if (reads.some(r => r.unparseable === true)) {
    return refused('GRAPHQL_NOT_INSPECTABLE', 'this GraphQL document names job token allowlist fields but the gate cannot parse it; send a valid document')
  }
  if (effective.batch) {
    return refused('GRAPHQL_MIXED_OPERATION', 'a batched (multiplexed) GraphQL request cannot contain job token allowlist mutations or the gate\'s fields; send them in a request of their own')
  }
  const operation = effective.operations[0]!
  const document = reads[0]!.document!
  const operationName = typeof operation.operationName === 'string' ? operation.operationName : undefined
  // Before anything runs or is asked of GitLab, as GitLab refuses such a query before it runs.
  if (gateComplexity(document, operationName) > MAX_GATE_COMPLEXITY) {
    return refused('GRAPHQL_TOO_COMPLEX', `Query has complexity of more than ${MAX_GATE_COMPLEXITY}, which exceeds max complexity of ${MAX_GATE_COMPLEXITY}; send the gate's fields in smaller requests`)
  }
  const problems = validate(gateSchema(), document)
  // A root field the gate does not have, or one on the project: GitLab's field next to the gate's.
  const foreign = problems.filter(p => /^Cannot query field "[^"]*" on type "(?:Query|Mutation|Project)"|^Unknown argument "[^"]*" on field "(?:Query|Mutation|Project)\.|^Unknown type/.test(p.message))
  if (foreign.length > 0) {
    const ours = [...reads[0]!.facts!.gateFields, ...reads[0]!.facts!.allowlist]
    return refused('GRAPHQL_MIXED_OPERATION', `this GraphQL request mixes the gate's fields (${ours.join(', ')}) with GitLab fields; send them as separate requests (${foreign.map(p => quoted(p.message, MAX_PROBLEM_MESSAGE)).join(' ')})`)
  }
  const variables = normalizeVariables(operation.variables)
  return { kind: 'gate', document, variables, operationName, problems }
}

/**
 * Most characters of a validation problem's message an answer gives. graphql-js quotes the
 * document's names whole, and some rules name one node once per operation: a fragment using
 * `$<900 KB name>` spread in 100 operations that do not define it is a hundred messages naming
 * it (NoUndefinedVariables), a 90 MB answer to a 900 KB request with any made-up token.
 */
const MAX_PROBLEM_MESSAGE = 1000

/** A validation problem or execution error as the answer lists it: graphql-js's, its message cut to MAX_PROBLEM_MESSAGE. */
function problemJson (problem: GraphQLError): ReturnType<GraphQLError['toJSON']> {
  const json = problem.toJSON()
  return { ...json, message: quoted(json.message, MAX_PROBLEM_MESSAGE) }
}

/** Why a multipart body with doubtful parts is refused, naming them. */
export function doubtfulMessage (names: readonly string[]): string {
  return `parsers could read the parts of this multipart body differently, and a part could be read as ${names.map(n => JSON.stringify(n)).join(', ')}, which GitLab takes as a GraphQL parameter or a credential; write each part as Content-Disposition: form-data; name="..." (a plain Content-Type at most), CRLF line ends, a delimiter line before and after it`
}

// ---------------------------------------------------------------------------------------------
// Answers

const LEVEL_IN: Record<string, string> = { MAINTAINER: 'maintainer', JOB_TOKEN_AND_MAINTAINER: 'job_token_and_maintainer' }
const LEVEL_OUT: Record<string, string> = { maintainer: 'MAINTAINER', job_token_and_maintainer: 'JOB_TOKEN_AND_MAINTAINER' }

function graphView (doc: ProjectGrants, formats: readonly string[]): { packageRegistry: unknown[], jobTokenPoliciesEnabled: boolean | null } {
  const { package_registry: registry, job_token_policies_enabled: enabled } = permissionsView(doc, formats)
  const view = registry as Record<string, { read: boolean, write: string, delete: string, configured: boolean }>
  return {
    packageRegistry: Object.entries(view).map(([format, e]) => ({ format, read: e.read, write: LEVEL_OUT[e.write], delete: LEVEL_OUT[e.delete], configured: e.configured })),
    jobTokenPoliciesEnabled: enabled
  }
}

/**
 * A field's failure as its GraphQL error: a GateError (a refusal, the grants store unavailable or
 * lost, a write that lost every retry to concurrent ones) with its public message and code, as
 * REST answers it. The store's failures were `internal error` in a mutation, which told a client
 * nothing of a store it may try again, and in a query field their message for the logs (the Redis
 * client's error, a node's address, a key).
 */
function asGraphqlError (err: unknown): GraphQLError {
  if (err instanceof GraphQLError) return err
  if (err instanceof GateError) return new GraphQLError(err.publicMessage, { extensions: { code: err.code } })
  return new GraphQLError('internal error', { extensions: { code: 'GATE_INTERNAL_ERROR' } })
}

const gid = (type: 'Project' | 'Group' | 'User', id: number): string => `gid://gitlab/${type}/${id}`

function connection (nodes: unknown[]): Record<string, unknown> {
  return {
    count: nodes.length,
    nodes,
    edges: nodes.map((node, i) => ({ cursor: Buffer.from(String(i)).toString('base64'), node })),
    pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null }
  }
}

function targetView (type: EntryTargetType, id: number, path: string | undefined): Record<string, unknown> {
  return {
    __typename: type === 'project' ? 'CiJobTokenAccessibleProject' : 'CiJobTokenAccessibleGroup',
    id: gid(type === 'project' ? 'Project' : 'Group', id),
    fullPath: path ?? null,
    path: path === undefined ? null : path.slice(path.lastIndexOf('/') + 1)
  }
}

/** GitLab's CiJobTokenScopeType for the gate's document: the project itself first, as GitLab lists it. */
function scopeView (doc: ProjectGrants): Record<string, unknown> {
  const projects = [targetView('project', doc.projectId, doc.projectPath), ...doc.entries.filter(e => e.targetType === 'project').map(e => targetView('project', e.targetId, e.targetPath))]
  const groups = doc.entries.filter(e => e.targetType === 'group').map(e => targetView('group', e.targetId, e.targetPath))
  return {
    inboundAllowlist: connection(projects),
    groupsAllowlist: connection(groups),
    inboundAllowlistCount: projects.length,
    groupsAllowlistCount: groups.length,
    inboundAllowlistAutopopulatedIds: [],
    groupAllowlistAutopopulatedIds: []
  }
}

function entryGraphView (doc: ProjectGrants, entry: AllowlistEntry, formats: readonly string[], service: AdminService): Record<string, unknown> {
  return {
    sourceProject: projectView(doc.projectId, doc.projectPath, service, formats),
    target: targetView(entry.targetType, entry.targetId, entry.targetPath),
    direction: 'inbound',
    defaultPermissions: entry.defaultPermissions,
    jobTokenPolicies: entry.jobTokenPolicies.map(p => p.toUpperCase()),
    addedBy: entry.addedBy === null ? null : { id: gid('User', entry.addedBy.id), username: entry.addedBy.username ?? null },
    createdAt: entry.createdAt,
    autopopulated: false
  }
}

function projectView (projectId: number, projectPath: string, service: AdminService, formats: readonly string[]): Record<string, unknown> {
  return {
    id: gid('Project', projectId),
    fullPath: projectPath,
    async jobTokenPermissions () {
      try {
        const { doc } = await service.read(projectId, projectPath)
        return graphView(doc, formats)
      } catch (err) {
        throw asGraphqlError(err)
      }
    }
  }
}

/** The REST field names of allowlist validation issues, in the mutation's words. */
function issueText (issue: ValidationIssue, targetField: string): string {
  const words = (text: string): string => text
    .replace(/^target_(?:project|group)_id/, targetField)
    .replace(/default_permissions/g, 'defaultPermissions')
    .replace(/job_token_policies/g, 'jobTokenPolicies')
  // An issue of no field (how many more were not listed) is its message alone.
  return issue.path === '' ? words(issue.message) : `${words(issue.path)} ${words(issue.message)}`
}

/**
 * GitLab's enum values (READ_PACKAGES) as the catalog's policy names. A list longer than there
 * are policies is handed on as it is, unread: validation refuses it whole (views.ts policyIssues),
 * and each aliased mutation naming one variable would read it again.
 */
function policyNames (values: unknown, policies: PolicyIndex): unknown {
  return Array.isArray(values) && values.length <= policies.size ? values.map(v => typeof v === 'string' && /^[A-Z_]+$/.test(v) ? v.toLowerCase() : v) : values
}

type MutationResult = Record<string, unknown>

/** Longest clientMutationId a payload echoes (Relay's are counters or UUIDs). */
const MAX_CLIENT_MUTATION_ID = 255

/**
 * A mutation's clientMutationId, which its payload echoes; a longer one than
 * MAX_CLIENT_MUTATION_ID is the field's error, before anything is asked of GitLab. A document
 * hands one variable to each of its aliased mutations: 150 of them echoing a 900 KB one made a
 * 135 MB answer, held whole by the gate until the client read it.
 */
function mutationIdOf (input: { readonly clientMutationId?: unknown }): unknown {
  const id = input.clientMutationId ?? null
  if (typeof id === 'string' && id.length > MAX_CLIENT_MUTATION_ID) {
    throw new GraphQLError(errors.GRAPHQL_CLIENT_MUTATION_ID_TOO_LONG.message, { extensions: { code: 'GRAPHQL_CLIENT_MUTATION_ID_TOO_LONG' } })
  }
  return id
}

/**
 * A fine-grained token's permission at the project an operation acts on, by the id access() found:
 * throws an AdminError when the token does not hold it there (handler.ts, for a user's token).
 */
export type ConfirmPermission = (access: ProjectAccess, permission: string) => Promise<void>

/**
 * Runs a gate-only operation; the answer is GraphQL's `{data, errors}` (HTTP 200). `confirm`
 * asks a fine-grained token's permission again at the project each field acts on.
 */
export async function executeGraphql (service: AdminService, request: Extract<Classification, { kind: 'gate' }>, caller: Caller, requestId: string, confirm?: ConfirmPermission): Promise<unknown> {
  if (request.problems.length > 0) return { errors: request.problems.map(problemJson) }
  if (request.variables === null) return { errors: [{ message: 'variables must be a JSON object (or a string holding one)', extensions: { code: 'GRAPHQL_VARIABLES_INVALID' } }] }
  const formats = service.packageFormats()

  // The caller's first lookup answers alone, the others wait for it: a token GitLab refuses is
  // refused at every field, and with none of the refusals kept, up to 300 aliased fields (the
  // complexity bound) with any made-up token each asked GitLab again, all at once for a query's.
  let first: Promise<unknown> | null = null
  /** `permission`: what the field needs of a fine-grained token (docs/graphql.md, the gate's own operations). */
  const projectAccess = async (projectPath: string, permission: string): Promise<ProjectAccess> => {
    try {
      // A GraphQL projectPath is a full path, never an id: `200` or `.` names no project to
      // GitLab (Project.find_by_full_path), where GET /projects/200 would read an id and
      // GET /projects/. the project list.
      if (!isFullPath(projectPath)) throw new AdminError('ADMIN_PROJECT_NOT_FOUND')
      let asked: Promise<ProjectAccess>
      if (first === null) {
        asked = service.access(caller, encodeURIComponent(projectPath))
        first = asked.then(() => null, (err: unknown) => err)
      } else {
        const before = await first
        if (before instanceof AdminError && before.code === 'ADMIN_UNAUTHENTICATED') throw before
        asked = service.access(caller, encodeURIComponent(projectPath))
      }
      const access = await asked
      // Nor a moved project's old path, which REST follows (find_project) and GraphQL does not.
      if (access.projectPath.toLowerCase() !== projectPath.toLowerCase()) throw new AdminError('ADMIN_PROJECT_NOT_FOUND')
      // The permission was decided at the project the path named to the target lookup (cached);
      // this is the project the field acts on, which a path that changed hands since may not be.
      await confirm?.(access, permission)
      return access
    } catch (err) {
      throw asGraphqlError(err)
    }
  }

  /**
   * One allowlist mutation: the Maintainer check (a refusal is a GraphQL error), then `run`;
   * what the caller can fix (validation, a missing or existing entry, an unknown target) is in
   * the payload's `errors`, as GitLab's mutations report it.
   */
  const allowlistMutation = async (input: Record<string, unknown>, targetField: string, permission: string, run: (access: ProjectAccess) => Promise<MutationResult>, empty: MutationResult): Promise<MutationResult> => {
    const clientMutationId = mutationIdOf(input)
    const access = await projectAccess(String(input.projectPath), permission)
    try {
      return { ...await run(access), errors: [], clientMutationId }
    } catch (err) {
      if (err instanceof PayloadError) return { ...empty, errors: [err.message], clientMutationId }
      if (err instanceof AdminError && err.code === 'ADMIN_VALIDATION_FAILED') return { ...empty, errors: err.issues.map(i => issueText(i, targetField)), clientMutationId }
      if (err instanceof AdminError && (err.code === 'ADMIN_ENTRY_EXISTS' || err.code === 'ADMIN_NOT_FOUND')) return { ...empty, errors: [err.message.replace(/^\d{3} [A-Za-z ]+ - /, '')], clientMutationId }
      throw asGraphqlError(err)
    }
  }

  /**
   * The group or project GitLab finds at `path` now, as the caller sees it; entries are then
   * matched by its id. Never an entry by its stored `targetPath`: that is the path the target had
   * when it was added, and after a rename or transfer in GitLab it may name another one.
   */
  const target = async (access: ProjectAccess, path: string, types: readonly EntryTargetType[], field: string): Promise<{ type: EntryTargetType, id: number, path: string }> => {
    const found = await service.findTarget(access, path, types)
    if (found === null) throw new PayloadError(`${field} "${quoted(path)}" is not a ${types.join(' or ')} the caller can see`)
    return found
  }

  const inboundOnly = (direction: unknown): void => {
    if (direction === 'OUTBOUND') throw new PayloadError('direction OUTBOUND: the outbound job token scope no longer exists; the gate keeps the inbound allowlist only')
  }

  const rootValue = {
    async project ({ fullPath }: { fullPath: string }) {
      const access = await projectAccess(fullPath, 'read_project')
      return projectView(access.projectId, access.projectPath, service, formats)
    },
    async updateJobTokenPermissions ({ input }: { input: { projectPath: string, packageRegistry: Array<Record<string, unknown>>, jobTokenPoliciesEnabled?: boolean | null, clientMutationId?: string } }) {
      const clientMutationId = mutationIdOf(input)
      const access = await projectAccess(input.projectPath, 'update_job_token_scope')
      // The REST body, from the list of formats.
      // Without a prototype, so that `__proto__` is a format like any other (refused as unknown).
      const registry: Record<string, Record<string, unknown>> = Object.create(null) as Record<string, Record<string, unknown>>
      const issues: ValidationIssue[] = []
      // Longer than there are formats, it names one twice or one that is none: refused whole,
      // unread, as a policy list is (views.ts policyIssues), for aliases naming one variable.
      if (input.packageRegistry.length > formats.length) issues.push({ path: 'packageRegistry', message: `lists ${input.packageRegistry.length} package formats; there are ${formats.length}, each listed at most once` })
      else input.packageRegistry.forEach((item, i) => {
        const format = String(item.format)
        if (registry[format] !== undefined) issues.push({ path: `packageRegistry[${i}].format`, message: `lists "${quoted(format)}" twice` })
        const rule: Record<string, unknown> = {}
        for (const action of ['read', 'write', 'delete']) {
          if (!(action in item)) continue
          const value = item[action]
          rule[action] = action === 'read' || value === null ? value : LEVEL_IN[String(value)]
        }
        registry[format] = rule
      })
      try {
        if (issues.length > 0) throw new AdminError('ADMIN_VALIDATION_FAILED', undefined, issues)
        const doc = await service.update(access, 'update_job_token_permissions', requestId, current => {
          const found: ValidationIssue[] = []
          const rules = mergePackageRules({ package_registry: registry }, current.packageRules, formats, found)
          if (rules === null) throw new AdminError('ADMIN_VALIDATION_FAILED', undefined, found)
          // The project's override of its root namespace's setting (docs/admin.md): as REST's job_token_policies_enabled.
          const enabledGiven = 'jobTokenPoliciesEnabled' in input
          const enabled = enabledGiven ? input.jobTokenPoliciesEnabled ?? null : current.jobTokenPoliciesEnabled ?? null
          const { packageRules: _old, jobTokenPoliciesEnabled: _enabled, ...rest } = current
          return {
            doc: { ...rest, ...(Object.keys(rules).length === 0 ? {} : { packageRules: rules }), ...(enabled === null ? {} : { jobTokenPoliciesEnabled: enabled }) },
            before: { package_registry: current.packageRules ?? {}, ...(enabledGiven ? { job_token_policies_enabled: current.jobTokenPoliciesEnabled ?? null } : {}) },
            after: { package_registry: rules, ...(enabledGiven ? { job_token_policies_enabled: enabled } : {}) }
          }
        })
        return { jobTokenPermissions: graphView(doc, formats), errors: [], clientMutationId }
      } catch (err) {
        // GitLab's mutations report user errors in the payload's `errors`, each naming its field.
        if (err instanceof AdminError && err.code === 'ADMIN_VALIDATION_FAILED') {
          return { jobTokenPermissions: null, errors: err.issues.map(i => i.path === '' ? i.message : `${i.path.replace(/^package_registry/, 'packageRegistry')} ${i.message}`), clientMutationId }
        }
        throw asGraphqlError(err)
      }
    },
    async ciJobTokenScopeAddProject ({ input }: { input: Record<string, unknown> }) {
      return await allowlistMutation(input, 'targetProjectPath', 'create_job_token_scope_allowlist', async access => {
        inboundOnly(input.direction)
        const found = await target(access, String(input.targetProjectPath), ['project'], 'targetProjectPath')
        const { doc } = await service.addEntry(access, 'project', { target_project_id: found.id }, requestId, found.path)
        return { ciJobTokenScope: scopeView(doc) }
      }, { ciJobTokenScope: null })
    },
    async ciJobTokenScopeAddGroupOrProject ({ input }: { input: Record<string, unknown> }) {
      return await allowlistMutation(input, 'targetPath', 'create_job_token_scope_allowlist', async access => {
        const found = await target(access, String(input.targetPath), ['group', 'project'], 'targetPath')
        const body = {
          [found.type === 'project' ? 'target_project_id' : 'target_group_id']: found.id,
          default_permissions: input.defaultPermissions ?? true,
          job_token_policies: policyNames(input.jobTokenPolicies ?? [], service.policies())
        }
        const { doc, entry } = await service.addEntry(access, found.type, body, requestId, found.path)
        return { ciJobTokenScope: scopeView(doc), ciJobTokenScopeAllowlistEntry: entryGraphView(doc, entry, formats, service) }
      }, { ciJobTokenScope: null, ciJobTokenScopeAllowlistEntry: null })
    },
    async ciJobTokenScopeUpdatePolicies ({ input }: { input: Record<string, unknown> }) {
      return await allowlistMutation(input, 'targetPath', 'update_job_token_scope', async access => {
        const found = await target(access, String(input.targetPath), ['group', 'project'], 'targetPath')
        const body = { default_permissions: input.defaultPermissions, job_token_policies: policyNames(input.jobTokenPolicies, service.policies()) }
        const { doc, entry } = await service.changeEntry(access, found.type, found.id, body, requestId)
        return { ciJobTokenScopeAllowlistEntry: entryGraphView(doc, entry, formats, service) }
      }, { ciJobTokenScopeAllowlistEntry: null })
    },
    async ciJobTokenScopeRemoveProject ({ input }: { input: Record<string, unknown> }) {
      return await allowlistMutation(input, 'targetProjectPath', 'delete_job_token_scope_allowlist', async access => {
        inboundOnly(input.direction)
        const found = await target(access, String(input.targetProjectPath), ['project'], 'targetProjectPath')
        const { doc } = await service.removeEntry(access, 'project', found.id, requestId)
        return { ciJobTokenScope: scopeView(doc) }
      }, { ciJobTokenScope: null })
    },
    async ciJobTokenScopeRemoveGroup ({ input }: { input: Record<string, unknown> }) {
      return await allowlistMutation(input, 'targetGroupPath', 'delete_job_token_scope_allowlist', async access => {
        const found = await target(access, String(input.targetGroupPath), ['group'], 'targetGroupPath')
        const { doc } = await service.removeEntry(access, 'group', found.id, requestId)
        return { ciJobTokenScope: scopeView(doc) }
      }, { ciJobTokenScope: null })
    }
  }
  const result = await execute({
    schema: gateSchema(),
    document: request.document,
    rootValue,
    variableValues: request.variables,
    operationName: request.operationName
  })
  // graphql-js's own errors quote the client's values whole, a variable's once per problem it
  // has: an input object of 50 unknown fields beside one 900 KB string was 50 messages each
  // holding the string, a 45 MB answer to any made-up token. Cut as the validation problems are.
  return result.errors === undefined ? result : { ...result, errors: result.errors.map(problemJson) }
}

/** A problem the caller can fix, reported in the mutation payload's `errors`. */
class PayloadError extends Error {}
