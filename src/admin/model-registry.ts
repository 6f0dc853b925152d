// GitLab's GraphQL mutations of the model registry (app/graphql/mutations/ml/: mlModelCreate,
// mlModelEdit, mlModelDelete, mlModelDestroy, mlModelVersionCreate, mlModelVersionEdit,
// mlModelVersionDelete), behind `write_model_registry`, which Developers have. They write the
// registry whose files are `ml_model` packages, so a project's `ml_model` rule keeping writes
// (deletes) to Maintainers binds them as it binds the registry's REST and MLflow routes: each
// mutation's `projectPath` is checked with the users' role check (roles.ts). GitLab's GraphQL
// takes no job token, so only users reach them.
//
// mlModelVersionDelete names only the version's global ID, and no API the gate can ask finds a
// version's project: it is left to GitLab, whose delete marks the version's package for
// destruction behind `destroy_package` (Maintainers) first.

import { Kind, parse, valueFromASTUntyped, type DocumentNode, type FieldNode, type OperationDefinitionNode, type SelectionSetNode, type ValueNode } from 'graphql'
import type { CatalogRoute, PackageOperation } from '../catalog/types.ts'
import { mayNameProject, namesProjectTooLong } from '../grants/model.ts'
import type { RouteMatch } from '../routing/router.ts'
import type { SessionAnswer, UserRoleCheck } from './roles.ts'
import { GateError, type ErrorCode } from '../errors.ts'
import { cookieHeader, type Credential, type HeaderSource } from '../identity/credentials.ts'
import { findGraphqlToken } from './graphql-credentials.ts'
import { fieldWalker, gitlabDocument, graphqlReadings, normalizeVariables, rubyLexDifference, type GraphqlOperation, type GraphqlParams } from './graphql.ts'
import type { Waiter } from '../waiters.ts'

/** A document can name one only if its text does (GraphQL names are never escaped). */
export const MODEL_REGISTRY_TEXT = /mlModel(?:Version)?(?:Create|Edit|Delete|Destroy)/

const MUTATIONS: ReadonlyMap<string, 'write' | 'delete'> = new Map([
  ['mlModelCreate', 'write'],
  ['mlModelEdit', 'write'],
  ['mlModelDelete', 'delete'],
  ['mlModelDestroy', 'delete'],
  ['mlModelVersionCreate', 'write'],
  ['mlModelVersionEdit', 'write'],
  ['mlModelVersionDelete', 'delete']
])

/**
 * Most checks of a project path (a mutation's kind and `projectPath`) one request's package
 * mutations of a kind may need. Each asks GitLab which project the path names and, as the caller,
 * its role there, none of it kept when GitLab shows nothing at the path (whom the cookies sign in
 * is asked once per request): 500 aliased mutations naming made-up paths, with any Cookie, once
 * cost 1,000 calls. GitLab's pages send one; more is refused before any is asked.
 */
export const MAX_PROJECT_PATHS = 20

/** Refused before any of them is asked (a request without credentials asks nothing). */
export const TOO_MANY_PROJECTS = `400 Bad request - this GraphQL request's package mutations name more than ${MAX_PROJECT_PATHS} projects, and the gate asks GitLab about each before forwarding it; send at most ${MAX_PROJECT_PATHS} in one request`

/** The one mutation that names no project (see the header). */
const NO_PROJECT = 'mlModelVersionDelete'

/** A model registry mutation GitLab may run, and the full path it names (null: unreadable). */
export interface ModelRegistryMutation {
  readonly mutation: string
  readonly operation: 'write' | 'delete'
  readonly projectPath: string | null
}

/** The mutations of one kind a GraphQL request holds, in every reading of it. */
export type MutationsReading<T> =
  | { readonly kind: 'none' }
  | { readonly kind: 'found', readonly items: readonly T[] }
  /** A document naming such a mutation that the gate cannot read as GitLab would. */
  | { readonly kind: 'unreadable' }

const NONE = Object.freeze({ kind: 'none' as const })

/**
 * The mutations `read` knows in every reading of a GraphQL request (graphqlReadings): readings
 * that disagree each count. `read` gives a root field's reading, undefined for a field that is
 * none of them, null for one the gate cannot read as GitLab would. Hot path for GraphQL requests:
 * only an operation whose text `named` matches is parsed.
 */
export function readMutations<T> (params: GraphqlParams, named: RegExp, read: (field: MutationField) => T | null | undefined): MutationsReading<T> {
  let found: T[] | null = null
  for (const reading of graphqlReadings(params)) {
    for (const operation of reading.operations) {
      if (!named.test(operation.query)) continue
      const fields = mutationRootFields(operation, reading.batch)
      if (fields === null) return { kind: 'unreadable' }
      for (const field of fields) {
        const item = read(field)
        if (item === undefined) continue
        if (item === null) return { kind: 'unreadable' }
        ;(found ??= []).push(item)
      }
    }
  }
  // A part Rack or the JSON parser refuses that names one: Ruby's parsers may read it.
  if (found === null && params.broken.some(text => named.test(text))) return { kind: 'unreadable' }
  return found === null ? NONE : { kind: 'found', items: found }
}

/** The model registry mutations of a GraphQL request. */
export function modelRegistryMutations (params: GraphqlParams): MutationsReading<ModelRegistryMutation> {
  return readMutations(params, MODEL_REGISTRY_TEXT, ({ field, definition, variables }) => {
    const kind = MUTATIONS.get(field.name.value)
    if (kind === undefined) return undefined
    const projectPath = field.name.value === NO_PROJECT ? null : idText(inputValue(field, 'projectPath', definition, variables))
    return { mutation: field.name.value, operation: kind, projectPath }
  })
}

/** Who GitLab's GraphQL runs a request's mutations as, held to the users' package rules. */
export type GraphqlCaller =
  | { readonly kind: 'ambiguous' }
  | {
    readonly kind: 'caller'
    /** Whether the request carries anyone GitLab could sign in (a token, or cookies). */
    readonly signsIn: boolean
    /** The users' role check of this caller on `match`: null to go on, or the refusal. */
    readonly check: (match: RouteMatch) => Promise<GateError | null>
  }

/**
 * The caller of a GraphQL request's mutations: the access token GitLab's GraphQL reads (a job
 * token is none: GitLab runs such a request without it) and the session its cookies may sign in;
 * ambiguous where the tokens disagree. `session`: whom the cookies sign in, shared by every check
 * of the request (GitLab asked once, not once per project path). `client`: the request's; the
 * checks' lookups are given up once it has gone (LookupDropped, src/waiters.ts).
 */
export function graphqlCaller (roles: UserRoleCheck, request: HeaderSource, params: GraphqlParams, session: SessionAnswer = {}, client?: Waiter): GraphqlCaller {
  const token = findGraphqlToken(request, params)
  if (token.kind === 'ambiguous') return { kind: 'ambiguous' }
  // GitLab's API takes a personal access token as Bearer as well as an OAuth token.
  const credentials: Credential[] = token.kind === 'token' ? [{ secret: token.token, jobToken: false, source: 'bearer', where: 'header:authorization' }] : []
  // The Cookie header GitLab's session is read from, as it is forwarded (cookieHeader).
  const value = cookieHeader(request)
  const cookie = value === undefined ? {} : { cookie: value }
  return {
    kind: 'caller',
    signsIn: credentials.length > 0 || value !== undefined,
    check: async match => {
      const refusal: { code: ErrorCode, message?: string } | null = await roles.check({ match, credentials, ...cookie, session, ...(client === undefined ? {} : { client }) })
      return refusal === null ? null : new GateError(refusal.code, refusal.message)
    }
  }
}

/** A root field of a mutation GitLab may run, with what its arguments are read against. */
export interface MutationField {
  readonly field: FieldNode
  readonly definition: OperationDefinitionNode
  readonly variables: Record<string, unknown> | null
}

/**
 * The root fields of every mutation of `operation` GitLab may run (through aliases, inline
 * fragments and fragment spreads); null when the document cannot be read as GitLab reads it.
 */
export function mutationRootFields (operation: GraphqlOperation, batch: boolean): MutationField[] | null {
  let document: DocumentNode
  try {
    const text = gitlabDocument(operation.query, batch)
    // GitLab's parser would cut it otherwise: what it runs is not what the gate reads.
    if (rubyLexDifference(text) !== null) return null
    document = parse(text)
  } catch {
    return null
  }
  const variables = normalizeVariables(operation.variables)
  const out: MutationField[] = []
  for (const definition of operationsRun(document, operation.operationName)) {
    for (const field of rootFields(document, definition.selectionSet)) out.push({ field, definition, variables })
  }
  return out
}

/**
 * The mutations GitLab may run: the one `operationName` names, else every one (GitLab runs the
 * only one). A name no operation has (GitLab refuses the request) counts every one.
 */
function operationsRun (document: DocumentNode, operationName: string | null): OperationDefinitionNode[] {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)
  const named = operationName === null ? [] : operations.filter(d => d.name?.value === operationName)
  return (named.length > 0 ? named : operations).filter(d => d.operation === 'mutation')
}

/** The root fields of one operation, through inline fragments and fragment spreads. */
function rootFields (document: DocumentNode, set: SelectionSetNode): FieldNode[] {
  const { walk, fields } = fieldWalker(document)
  walk(set)
  return fields
}

/**
 * `input.<name>` as graphql-ruby reads it, from the document, a variable or the variable's
 * default (a list's items too); UNREAD when the gate cannot read it.
 */
export function inputValue (field: FieldNode, name: string, definition: OperationDefinitionNode, variables: Record<string, unknown> | null): unknown {
  const input = field.arguments?.find(a => a.name.value === 'input')?.value
  if (input === undefined) return UNREAD
  if (input.kind === Kind.OBJECT) {
    const fields = input.fields.filter(f => f.name.value === name)
    return fields.length === 1 ? valueOf(fields[0]!.value, definition, variables) : UNREAD
  }
  const value = valueOf(input, definition, variables)
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return UNREAD
  return Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : UNREAD
}

export const UNREAD = Symbol('unread')

/** A literal, or a variable's value (its default when not given); UNREAD when the variables cannot be read. */
function valueOf (node: ValueNode, definition: OperationDefinitionNode, variables: Record<string, unknown> | null): unknown {
  if (node.kind !== Kind.VARIABLE) {
    if (node.kind === Kind.STRING || node.kind === Kind.INT) return node.kind === Kind.STRING ? node.value : Number(node.value)
    if (node.kind === Kind.LIST) {
      const items = node.values.map(item => valueOf(item, definition, variables))
      return items.includes(UNREAD) ? UNREAD : items
    }
    return node.kind === Kind.OBJECT ? valueFromASTUntyped(node, variables ?? undefined) : UNREAD
  }
  if (variables === null) return UNREAD
  const name = node.name.value
  if (Object.hasOwn(variables, name)) return variables[name]
  const declared = definition.variableDefinitions?.find(v => v.variable.name.value === name)?.defaultValue
  return declared === undefined ? UNREAD : valueFromASTUntyped(declared)
}

/** graphql-ruby's ID: a string, or an integer's digits. */
export function idText (value: unknown): string | null {
  if (typeof value === 'string') return value
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
  return null
}

/** One frozen route per format and operation: what the users' role check (roles.ts) reads of a match. */
const routes = new Map<string, CatalogRoute>()

/**
 * The match a `/projects/:id` route writing (deleting) `format`'s packages would give for
 * `project` (an id, or a full path), for the users' role check of a GraphQL mutation; `what`
 * names the mutation's kind in the route's title.
 */
export function graphqlPackageMatch (format: string, operation: PackageOperation, project: string, what: string): RouteMatch {
  const key = `${format} ${operation}`
  let route = routes.get(key)
  if (route === undefined) {
    route = Object.freeze({
      id: `graphql_${format}_${operation}`,
      method: 'POST',
      pattern: '/api/graphql',
      policies: [],
      skipPolicies: false,
      resource: 'packages',
      title: `${what} through GitLab's GraphQL`,
      accessedProject: 'project',
      packageFormat: format,
      packageOperation: operation
    })
    routes.set(key, route)
  }
  return { route, params: Object.freeze(Object.assign(Object.create(null) as Record<string, string>, { id: project })), format: false }
}

/**
 * graphqlPackageMatch for a mutation's `projectPath`, a full path; null where GitLab finds no
 * project (no `/` in the path: FindsProject reads it as a full path, never an id). One too long for
 * the gate to look up is a match: the role check refuses it.
 */
export function projectPathMatch (format: string, operation: PackageOperation, projectPath: string, what: string): RouteMatch | null {
  if (!mayNameProject(projectPath) && !namesProjectTooLong(projectPath)) return null
  return graphqlPackageMatch(format, operation, projectPath, what)
}

const UNREADABLE = '400 Bad request - this GraphQL request names a model registry mutation (mlModel*) that the gate cannot read as GitLab would (a document or variables that do not parse, or a projectPath that is not text), so the project\'s package rules cannot be checked; send the document and its variables as JSON, with input.projectPath a string'

/**
 * The users' package rules on a GraphQL request's model registry mutations: null to go on, or the
 * refusal (a GateError: 403 PACKAGE_MAINTAINER_ONLY, 503 ROLE_CHECK_UNAVAILABLE, 401
 * CREDENTIAL_AMBIGUOUS, 400 GRAPHQL_NOT_INSPECTABLE, GRAPHQL_TOO_MANY_PROJECTS). The caller is the
 * request's access token where GitLab's GraphQL reads one, and the session its cookies may sign
 * in; a job token is none (GitLab's GraphQL runs such a request without it). `session`: as for
 * graphqlCaller.
 */
export async function checkModelRegistryMutations (roles: UserRoleCheck, request: HeaderSource, params: GraphqlParams, session: SessionAnswer = {}, client?: Waiter): Promise<GateError | null> {
  const reading = modelRegistryMutations(params)
  if (reading.kind === 'none') return null
  if (reading.kind === 'unreadable') return new GateError('GRAPHQL_NOT_INSPECTABLE', UNREADABLE)
  const caller = graphqlCaller(roles, request, params, session, client)
  if (caller.kind === 'ambiguous') return new GateError('CREDENTIAL_AMBIGUOUS')
  // Each check may cost calls to GitLab, a made-up path's as many as a real one's: counted first.
  const checks = new Set<string>()
  for (const { operation, projectPath } of reading.items) {
    if (projectPath !== null && projectPathMatch('ml_model', operation, projectPath, '') !== null) checks.add(`${operation} ${projectPath}`)
  }
  if (caller.signsIn && checks.size > MAX_PROJECT_PATHS) return new GateError('GRAPHQL_TOO_MANY_PROJECTS', TOO_MANY_PROJECTS)
  const checked = new Set<string>()
  for (const { mutation, operation, projectPath } of reading.items) {
    if (projectPath === null) {
      if (mutation === NO_PROJECT) continue
      return new GateError('GRAPHQL_NOT_INSPECTABLE', UNREADABLE)
    }
    const key = `${operation} ${projectPath}`
    if (checked.has(key)) continue
    checked.add(key)
    const match = projectPathMatch('ml_model', operation, projectPath, `A model registry ${operation}`)
    if (match === null) continue
    const refused = await caller.check(match)
    if (refused !== null) return refused
  }
  return null
}
