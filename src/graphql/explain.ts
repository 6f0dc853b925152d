// `job-token-gate explain-graphql`: which catalog entries a GraphQL document touches, the
// permission each needs, and the project or group it applies to. The enforcement of
// fine-grained personal access tokens at /api/graphql (enforce.ts) decides from this reading.
//
// Without a schema only root fields can be named: a mutation's root fields are the mutations
// (GitLab's `Mutation` type), a query's root fields are `Query.<field>`. With an SDL schema,
// graphql-js's TypeInfo gives the parent and return type of every selection, through fragments,
// inline fragments and interfaces, so types and nested fields are matched too.

import {
  GraphQLError,
  Kind as AstKind,
  TypeInfo,
  buildSchema,
  getNamedType,
  isAbstractType,
  isObjectType,
  parse,
  valueFromASTUntyped,
  visit,
  visitWithTypeInfo,
  type ASTNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode
} from 'graphql'
import { rubyLexDifference } from '../admin/graphql.ts'
import { repeatedName } from './documents.ts'
import type { Boundary, GraphqlCatalog, GraphqlPermissionEntry, Kind } from './catalog.ts'

export class GraphqlDocumentError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'GraphqlDocumentError'
  }
}

/** Where a permission applies, read from the arguments of the field and of its ancestors. */
export interface BoundaryTarget {
  /** project, group, namespace (a `fullPath` whose field does not say which), or another object whose project decides. */
  readonly kind: 'project' | 'group' | 'namespace' | 'object'
  readonly path?: string
  readonly id?: string
  /** For `object`: the model of the global ID, e.g. Vulnerability. */
  readonly model?: string
  /** The argument it came from, e.g. `fullPath`, `input.projectPath`. */
  readonly from: string
}

export interface Touch {
  readonly kind: 'mutation' | 'field' | 'type'
  /** The catalog's GraphQL name: `vulnerabilityCreate`, `Query.project`, `Vulnerability`. */
  readonly name: string
  /** Response path, aliases as sent: `created`, `project.vulnerabilities`. */
  readonly path: string
  readonly permissions: ReadonlyArray<{ readonly permission: string, readonly boundary: Boundary }>
  readonly target: BoundaryTarget | null
}

export interface OperationExplanation {
  readonly name: string
  readonly operation: 'query' | 'mutation' | 'subscription'
  readonly touches: readonly Touch[]
  /** What the operation touches that the catalog does not list: `mutation fooCreate`, `field Query.echo`, `type Issue`. */
  readonly notInCatalog: readonly string[]
  /** The same, each with the project or group its arguments name (the gate maps its own fields from these). */
  readonly unlisted: ReadonlyArray<{ readonly label: string, readonly target: BoundaryTarget | null }>
}

export interface GraphqlExplanation {
  /** False: no schema was given, only root fields were matched. */
  readonly schema: boolean
  readonly operations: readonly OperationExplanation[]
}

/** The catalog, indexed by what a document names. */
export class GraphqlCatalogIndex {
  private readonly byKindName = new Map<string, GraphqlPermissionEntry[]>()

  constructor (catalog: GraphqlCatalog) {
    for (const entry of catalog.entries) {
      const key = `${entry.kind} ${entry.graphqlName}`
      const list = this.byKindName.get(key) ?? []
      list.push(entry)
      this.byKindName.set(key, list)
    }
  }

  lookup (kind: Kind, name: string): readonly GraphqlPermissionEntry[] {
    return this.byKindName.get(`${kind} ${name}`) ?? []
  }
}

/** The document, or an error naming where it does not parse, GitLab's parser would read it otherwise, or it repeats a name. */
export function parseDocument (text: string, source = 'document'): DocumentNode {
  let document: DocumentNode
  try {
    document = parse(text, { maxTokens: 100_000 })
  } catch (err) {
    if (!(err instanceof GraphQLError)) throw err
    const at = err.locations?.[0]
    throw new GraphqlDocumentError(`${source}${at === undefined ? '' : `:${at.line}:${at.column}`}: ${err.message}`)
  }
  // The gate refuses such a document, so explaining what it touches would mislead.
  const difference = rubyLexDifference(text)
  if (difference !== null) throw new GraphqlDocumentError(`${source}:${difference.line}: GitLab's parser would read this document otherwise (the gate refuses it, GRAPHQL_DOCUMENT_AMBIGUOUS): ${difference.what}`)
  const repeated = repeatedName(document)
  if (repeated !== null) throw new GraphqlDocumentError(`${source}: ${repeated} (the gate refuses it, GRAPHQL_DOCUMENT_INVALID)`)
  return document
}

export function parseSchema (sdl: string, source = 'schema'): GraphQLSchema {
  try {
    return buildSchema(sdl)
  } catch (err) {
    // buildSchema throws GraphQLError on syntax, Error on an invalid schema: both are the file's fault.
    throw new GraphqlDocumentError(`${source}: not a usable SDL schema: ${(err as Error).message}`)
  }
}

/**
 * Object types that carry no permission of their own: mutation payloads, connections, edges and
 * graphql-ruby's PageInfo wrap the objects that do. GitLab's permission check
 * (`gitlab:permissions:validate`, lib/tasks/gitlab/permissions/graphql/) requires a declaration on
 * every object type but these, so the page never lists them; they are read with their field.
 */
export const WRAPPER_TYPE = /(?:Payload|Connection|Edge)$|^PageInfo$/

function targetFromPath (key: string, path: string, fieldName: string, from: string): BoundaryTarget | null {
  if (key === 'projectPath') return { kind: 'project', path, from }
  if (key === 'groupPath') return { kind: 'group', path, from }
  // `fullPath` names whatever the field returns: Query.project, Query.group, Query.namespace.
  if (/^projects?$/.test(fieldName)) return { kind: 'project', path, from }
  if (/^groups?$/.test(fieldName)) return { kind: 'group', path, from }
  return { kind: 'namespace', path, from }
}

/** CGI.unescape: `+` is a space, `%XX` a byte; other text is left as it is. */
function cgiUnescape (text: string): string {
  return Buffer.from(text.replace(/\+/g, ' ').replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8')
}

/**
 * A global ID as GitLab reads one: the model and the id of `gid://gitlab/Project/12`, or null for
 * text that is none. GitLab's GlobalIDType parses with the globalid gem (`GlobalID.parse`): the
 * text as a `gid://` URI, whose user, port, query (`?key=value`, its params) and fragment choose
 * no record, with the id percent-decoded (CGI.unescape: `%33%30%30` is 300); failing that, the
 * text as the URL-safe base64 of one (GlobalID#to_param). The model is a Ruby constant name, so
 * `::Project` and `Object::Project` are Project. The id goes to ActiveRecord's `find`, which
 * reads `300abc` as 300: an id that is not digits is returned as it is, and no project or group
 * of that id is looked up (a target the gate cannot find). The host is not read: GitLab's ID
 * types refuse another app, and reading it anyway only checks more.
 */
export function readGlobalId (value: string): { readonly model: string, readonly id: string } | null {
  let text = value
  if (!/^gid:/i.test(text)) {
    // The base64 of `gid:` starts `Z2lkO`.
    if (!/^Z2lkO[A-Za-z0-9+/_-]*={0,2}$/.test(text)) return null
    text = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1')
    if (!/^gid:/i.test(text)) return null
  }
  // Ruby's URI parser (RFC 3986) refuses any other character, and GlobalID.parse with it: text
  // such as a note's "gid://gitlab/Project/1 is the one" is no global ID.
  if (/[^A-Za-z0-9\-._~!$&'()*+,;=:@/?#%[\]]/.test(text)) return null
  // gid://[user@]host[:port]/Model/id[?params][#fragment]
  const path = /^gid:\/\/[^/?#]*(\/[^?#]*)/i.exec(text)?.[1]
  const m = path === undefined ? null : /^\/([^/]+)\/(.+)$/s.exec(path)
  if (m === null) return null
  const model = m[1]!.replace(/^(?:::)?(?:Object::)*/, '')
  const id = cgiUnescape(m[2]!)
  return model === '' || id === '' ? null : { model, id }
}

/** Namespaces are one table: `gid://gitlab/Namespace/10` finds group 10 (or a user's or a project's namespace). */
const NAMESPACE_MODEL = /^(?:Namespace|Namespaces::\w+)$/

/** readGlobalId, a long text once per analysis (see Analysis). */
function globalIdOf (value: string): ReturnType<typeof readGlobalId> {
  if (value.length < 1024 || analysis === null) return readGlobalId(value)
  const known = analysis.texts.get(value)
  if (known !== undefined) return known
  const gid = readGlobalId(value)
  analysis.texts.set(value, gid)
  return gid
}

function targetFromGid (value: string, from: string): BoundaryTarget | null {
  const gid = globalIdOf(value)
  if (gid === null) return null
  const { model, id } = gid
  if (model === 'Project') return { kind: 'project', id, from }
  if (model === 'Group') return { kind: 'group', id, from }
  if (NAMESPACE_MODEL.test(model)) return { kind: 'namespace', id, from }
  return { kind: 'object', model, id, from }
}

const PATH_ARGS = ['projectPath', 'groupPath', 'fullPath']
/** Lists of paths, each read as the argument of the singular name reads one. */
const PATH_LIST_ARGS: ReadonlyArray<readonly [string, string]> = [['projectPaths', 'projectPath'], ['groupPaths', 'groupPath'], ['fullPaths', 'fullPath']]

/**
 * Other arguments that name a project, group or namespace by its path, and what each names:
 * `targetProjectPath` (issueMove moves the issue into that project, while GitLab checks the token
 * at `projectPath` alone), `startProjectPath` (commitCreate reads the commit's start there),
 * `namespacePath`, `targetFullPath`; a list of them (`...Paths`) too. A name that merely ends in
 * `Path` (`filePath`, `blobPath`) names a file, not a project.
 */
const NAMED_PATH_ARG = /^(?:namespace|[a-z][A-Za-z0-9]*(Project|Group|Full|Namespace))Paths?$/

/**
 * The allowlist mutations' `targetProjectPath` names the project whose jobs an entry lets in:
 * nothing is done there, and the permission is asked at `projectPath` alone, as for their REST
 * twins' `target_project_id` (docs/graphql.md#the-gates-own-operations).
 */
const ALLOWLIST_MUTATION = /^ciJobTokenScope/

function namedPathKind (key: string): 'project' | 'group' | 'namespace' | null {
  const m = NAMED_PATH_ARG.exec(key)
  if (m === null) return null
  return m[1] === 'Project' ? 'project' : m[1] === 'Group' ? 'group' : 'namespace'
}

/** Most projects, groups and namespaces one field's arguments may name. */
export const MAX_TARGETS = 8

/** Where a target is, whichever argument named it. */
const targetKey = (t: BoundaryTarget): string => `${t.kind}\u0000${t.model ?? ''}\u0000${t.id ?? ''}\u0000${t.path ?? ''}`

/**
 * The targets a field is checked at: each project, group and namespace once, at most MAX_TARGETS
 * (more is refused: GitLab takes a field's boundary from one, and the bound keeps an input of
 * thousands of global IDs, in variables no document limit counts, from multiplying the analysis),
 * and the first global ID of another object, which counts only when none of those is named.
 */
class TargetSet {
  // Made on the first target: most values read name none.
  named: BoundaryTarget[] | null = null
  object: BoundaryTarget | null = null
  private seen: Set<string> | null = null

  /** `fieldName` and `around` name the arguments read, for the refusal (built only then). */
  constructor (private readonly fieldName: string, private readonly around = '') {}

  add (target: BoundaryTarget | null): void {
    if (target === null) return
    if (target.kind === 'object') {
      // The `id` argument's object is the one GitLab may take as the boundary (boundaryNamed),
      // whichever argument wrote a global ID before it.
      if (this.object === null || (!BOUNDARY_ID.test(this.object.from) && BOUNDARY_ID.test(target.from))) this.object = target
      return
    }
    const key = targetKey(target)
    const named = this.named ??= []
    const seen = this.seen ??= new Set()
    if (seen.has(key)) return
    if (named.length === MAX_TARGETS) throw new GraphqlDocumentError(`the arguments of ${this.fieldName}${this.around} name more than ${MAX_TARGETS} projects, groups or namespaces (GitLab takes a field's boundary from one)`)
    seen.add(key)
    named.push(target)
  }

  /** The projects, groups and namespaces named, else the other object, else none. */
  targets (): BoundaryTarget[] {
    return this.named !== null ? this.named : this.object === null ? [] : [this.object]
  }
}

/**
 * Every project, group and namespace the arguments name (`projectPath`, `groupPath`, `fullPath`,
 * their lists `projectPaths`, `groupPaths`, `fullPaths`, other paths by their name's ending such
 * as `targetProjectPath` (NAMED_PATH_ARG), and global IDs under any argument name, inside input
 * objects and lists too), in the order read: the top level first, then inside input
 * objects and lists. GitLab takes a boundary from one argument, the directive's
 * `boundary_argument`, which its docs page (and so the catalog) does not name; a global ID in any
 * other argument (`clientMutationId`, `name`) must not choose which target is checked, so each
 * one named is. A list is never a boundary to GitLab (BoundaryExtractor reads a global ID or a
 * path, nothing else), but it may name projects the operation acts on there, which its boundary
 * does not cover (runnerUpdate's `associatedProjects` assign a runner to each): each one is
 * checked too. When none is named, the first global ID of another object
 * (`gid://gitlab/Vulnerability/5`), whose project or group GitLab checks itself; else nothing.
 */
export function targetsOfArguments (args: Readonly<Record<string, unknown>>, fieldName: string): BoundaryTarget[] {
  return namedElseObject(argumentsFound(args, fieldName))
}

/** The named targets, else the object of a global ID, else none. */
function namedElseObject (found: Found): BoundaryTarget[] {
  return found.named.length > 0 ? [...found.named] : found.object === null ? [] : [found.object]
}

function argumentsFound (args: Readonly<Record<string, unknown>>, fieldName: string): Found {
  // `fullPath` names whatever the field returns (targetFromPath): the field's name matters only so.
  const pathField = /^projects?$/.test(fieldName) ? 'project' : /^groups?$/.test(fieldName) ? 'group' : ''
  const namedPaths = !ALLOWLIST_MUTATION.test(fieldName)
  return foundIn(args, 0, fieldName, caches(namedPaths ? pathField : `${pathField}\u0000allowlist`), namedPaths)
}

/**
 * The arguments GitLab takes a mutation's or root field's boundary from (a directive's
 * `boundary_argument`, read at the top level or in `input`): a path, a project's or group's
 * global ID, an object's `id`. Never a list, nor text such as a `title` or a `description`.
 */
const BOUNDARY_ARGUMENT = /^(?:input\.)?(?:id|projectPath|groupPath|fullPath|namespacePath|projectId|groupId|namespaceId|project|group|namespace)$/

/**
 * A root field's targets (targetsOfArguments) when the catalog lists it at the user or the
 * instance as well: where no project or group named comes from an argument GitLab takes a
 * boundary from, GitLab checks it where that argument is, the object of its `id`, else at the
 * user or the instance (boundaryNamed), so that is checked too. A project's global ID written in
 * createSnippet's `description` is no boundary, and the snippet is the user's; nor is another
 * object's but for an `id`'s (a `title`'s, cdApplicationCreate's `organizationId`).
 */
function rootTargets (args: Readonly<Record<string, unknown>>, fieldName: string, standalone: boolean): Targets {
  const found = argumentsFound(args, fieldName)
  if (!standalone) return orNone(namedElseObject(found))
  if (found.named.some(t => BOUNDARY_ARGUMENT.test(t.from))) return found.named
  // Another object is GitLab's to place only as the `id`'s: one in a `title` names nothing.
  const object = found.object !== null && BOUNDARY_ID.test(found.object.from) ? found.object : null
  return [...found.named, object]
}

/**
 * What a value in the arguments names: its projects, groups and namespaces, else its first other
 * object; `from` relative to the value. `values`: how many values were read to find them.
 */
interface Found { readonly named: readonly BoundaryTarget[], readonly object: BoundaryTarget | null, readonly values: number }

/**
 * What the analysis running now (explainGraphql) has read: the input objects and lists of many
 * values, by what `fullPath` names there and the depth they are read at, and long texts read as
 * global IDs. A variable is one value however many fields name it (`a1: project(x: $v) a2:
 * project(x: $v) ...`): read once, not once per field. 700 fields naming a list of 60,000 items
 * once took the analysis over a minute, every other request waiting.
 */
interface Analysis {
  readonly found: Map<string, Array<Map<object, Found>>>
  readonly texts: Map<string, ReturnType<typeof readGlobalId>>
}
let analysis: Analysis | null = null
const CACHED_VALUES = 64

function caches (pathField: string): Array<Map<object, Found>> {
  const found = analysis?.found ?? new Map<string, Array<Map<object, Found>>>()
  let byDepth = found.get(pathField)
  if (byDepth === undefined) found.set(pathField, byDepth = Array.from({ length: 8 }, () => new Map()))
  return byDepth
}

/** The targets `value` names (targetsOfArguments), read at `depth`; a large nested value read once. */
function foundIn (value: object, depth: number, fieldName: string, cache: Array<Map<object, Found>>, namedPaths: boolean): Found {
  const known = cache[depth]!.get(value)
  if (known !== undefined) return known
  let values = 1
  const set = new TargetSet(fieldName)
  const add = (target: BoundaryTarget | null): void => { set.add(target) }
  const nested = (v: object, prefix: string): void => {
    const inner = foundIn(v, depth + 1, fieldName, cache, namedPaths)
    values += inner.values
    const under = (target: BoundaryTarget): BoundaryTarget => ({ ...target, from: prefix + target.from })
    for (const target of inner.named) add(under(target))
    if (inner.object !== null) add(under(inner.object))
  }
  // These are IDs in GitLab's schema, and graphql-ruby's ID takes an integer too:
  // `group(fullPath: 20)` is the path "20", as `group(fullPath: "20")` is. Ruby keeps every digit
  // of an integer; past 2^53 the gate's reading (JSON.parse, graphql-js) has lost some, and would
  // check another path than the one GitLab looks up: refused.
  const pathOf = (v: unknown): string => {
    if (typeof v === 'string') return v
    if (typeof v !== 'number' || !Number.isInteger(v)) return ''
    if (!Number.isSafeInteger(v)) throw new GraphqlDocumentError(`an integer path argument of ${fieldName} is past 2^53, whose digits the gate cannot read exactly as GitLab does; send the path as a string`)
    return String(v)
  }
  if (Array.isArray(value)) {
    values += value.length
    // A list's items: global IDs (`associatedProjects: [ProjectID]`), input objects, lists.
    value.forEach((v: unknown, i) => {
      if (typeof v === 'string') add(targetFromGid(v, `[${i}]`))
      else if (depth > 4) return
      else if (Array.isArray(v)) nested(v, `[${i}]`)
      else if (typeof v === 'object' && v !== null) nested(v, `[${i}].`)
    })
  } else {
    const record = value as Readonly<Record<string, unknown>>
    const keys = Object.keys(record)
    values += keys.length
    for (const key of PATH_ARGS) {
      const path = pathOf(record[key])
      if (path !== '') add(targetFromPath(key, path, fieldName, key))
    }
    for (const [key, singular] of PATH_LIST_ARGS) {
      const list = record[key]
      if (!Array.isArray(list)) continue
      list.forEach((v, i) => {
        const path = pathOf(v)
        if (path !== '') add(targetFromPath(singular, path, fieldName, `${key}[${i}]`))
      })
    }
    for (const key of keys) {
      const kind = namedPaths ? namedPathKind(key) : null
      if (kind === null) continue
      const v = record[key]
      if (!Array.isArray(v)) {
        const path = pathOf(v)
        if (path !== '') add({ kind, path, from: key })
      } else {
        v.forEach((item: unknown, i) => {
          const path = pathOf(item)
          if (path !== '') add({ kind, path, from: `${key}[${i}]` })
        })
      }
    }
    // Global IDs under any name: `id`, `projectId`, and inputs typed ProjectID such as `project`.
    for (const key of keys) {
      const v = record[key]
      if (typeof v === 'string') add(targetFromGid(v, key))
    }
    if (depth <= 4) {
      for (const key of keys) {
        const v = record[key]
        if (Array.isArray(v)) nested(v, key)
        else if (typeof v === 'object' && v !== null) nested(v, `${key}.`)
      }
    }
  }
  const found: Found = { named: set.named ?? [], object: set.object, values }
  if (values >= CACHED_VALUES) cache[depth]!.set(value, found)
  return found
}

// Objects without a prototype: an argument or variable named `__proto__` is one like any other.
function argumentValues (field: FieldNode, variables: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const values = Object.create(null) as Record<string, unknown>
  for (const arg of field.arguments ?? []) values[arg.name.value] = valueFromASTUntyped(arg.value, variables)
  return values
}

function operationVariables (op: OperationDefinitionNode, given: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const values = Object.create(null) as Record<string, unknown>
  for (const def of op.variableDefinitions ?? []) {
    if (def.defaultValue !== undefined) values[def.variable.name.value] = valueFromASTUntyped(def.defaultValue)
  }
  for (const [name, value] of Object.entries(given)) values[name] = value
  return values
}

class OperationReader {
  readonly touches: Touch[] = []
  readonly notInCatalog: string[] = []
  readonly unlisted: Array<{ label: string, target: BoundaryTarget | null }> = []
  private readonly seen = new Set<string>()
  // What was noted, by label and by label and target: a document of 10,000 fields the catalog
  // does not list, each compared with every one noted before, once took 4 s.
  private readonly noted = new Set<string>()
  private readonly notedAt = new Set<string>()

  constructor (private readonly index: GraphqlCatalogIndex) {}

  note (label: string, target: BoundaryTarget | null = null): void {
    if (!this.noted.has(label)) {
      this.noted.add(label)
      this.notInCatalog.push(label)
    }
    const at = `${label}\u0000${JSON.stringify(target)}`
    if (!this.notedAt.has(at)) {
      this.notedAt.add(at)
      this.unlisted.push({ label, target })
    }
  }

  /** Whether the catalog lists a mutation or field at the user or the instance (rootTargets). */
  standalone (kind: 'mutation' | 'field', name: string): boolean {
    return this.index.lookup(kind === 'mutation' ? 'Mutation' : 'Field', name).some(e => e.boundary === 'User' || e.boundary === 'Instance')
  }

  /**
   * Records a catalog match; `reportMissing: false` for what an unlisted name does not make
   * unreachable (a nested field, covered by its type). `root`: a mutation or field at the
   * operation's root, whose target its own arguments name (boundaryNamed).
   */
  record (kind: Touch['kind'], name: string, path: string, target: BoundaryTarget | null, reportMissing = true, root = false): void {
    const catalogKind: Kind = kind === 'mutation' ? 'Mutation' : kind === 'field' ? 'Field' : 'Type'
    const entries = this.index.lookup(catalogKind, name)
    if (entries.length === 0) {
      if (reportMissing) this.note(`${kind} ${name}`, target)
      return
    }
    const key = `${kind} ${name} ${JSON.stringify(target)}`
    if (this.seen.has(key)) return
    this.seen.add(key)
    const permissions = entries.map(e => ({ permission: e.permission, boundary: e.boundary }))
    this.touches.push({ kind, name, path, permissions: root ? boundaryNamed(permissions, target) : permissions, target })
  }
}

/**
 * The permissions of a mutation or root field whose arguments name `target`. GitLab takes such a
 * field's boundary from its arguments and checks one listed at several boundaries at the first,
 * in the order project, group, user, instance, whose boundary they name
 * (GranularTokenAuthorization#find_matching_directive): a project or group named is checked at
 * that boundary alone, the user or instance entry is read only when none is (and then alone). So
 * createSnippet with a `projectPath` needs Snippet: Create at that project, without one at the
 * user boundary; runnerCreate with a `projectId` needs Runner: Create there, with neither a
 * project nor a group, at the instance. The object of an `id` (runnerUpdate's
 * `gid://gitlab/Ci::Runner/5`, updateSnippet's snippet) keeps them all: GitLab finds its
 * boundary; another object's global ID names nothing (rootTargets). (A nested field or a type
 * keeps them all: GitLab checks it at the object it returns, which may be an instance runner
 * under a project.)
 */
function boundaryNamed (permissions: Touch['permissions'], target: BoundaryTarget | null): Touch['permissions'] {
  if (target === null) {
    // Nothing named: GitLab's project and group entries find no boundary, the user or instance one decides.
    const standalone = permissions.filter(p => p.boundary === 'User' || p.boundary === 'Instance')
    return standalone.length > 0 ? standalone : permissions
  }
  const boundary = target.kind === 'project' ? 'Project' : target.kind === 'group' ? 'Group' : null
  if (boundary === null || !permissions.some(p => p.boundary === boundary)) return permissions
  return permissions.filter(p => p.boundary === boundary)
}

/**
 * Where a multi-boundary field's object is: the `id` of a root field or of its `input` (GitLab's
 * boundary argument for runnerUpdate, runnerDelete, Query.runner, updateSnippet, destroySnippet).
 */
const BOUNDARY_ID = /^(?:input\.)?id$/

/** Root fields of a selection set, through fragments and inline fragments at the root. */
function rootFields (set: SelectionSetNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>, seen = new Set<string>()): FieldNode[] {
  const fields: FieldNode[] = []
  for (const sel of set.selections) {
    if (sel.kind === AstKind.FIELD) fields.push(sel)
    else if (sel.kind === AstKind.INLINE_FRAGMENT) fields.push(...rootFields(sel.selectionSet, fragments, seen))
    else {
      const name = sel.name.value
      const fragment = fragments.get(name)
      if (fragment === undefined) throw new GraphqlDocumentError(`unknown fragment "${name}"`)
      if (seen.has(name)) continue
      seen.add(name)
      fields.push(...rootFields(fragment.selectionSet, fragments, seen))
    }
  }
  return fields
}

const ROOT_TYPE = { query: 'Query', mutation: 'Mutation', subscription: 'Subscription' } as const

/** The targets a touch is checked at: each of them, or none named (null). */
type Targets = ReadonlyArray<BoundaryTarget | null>
const NO_TARGET: Targets = [null]
const orNone = (targets: readonly BoundaryTarget[]): Targets => targets.length > 0 ? targets : NO_TARGET

/**
 * A nested field's targets: its ancestors' and the ones its own arguments name. GitLab checks
 * the objects a nested field returns where they are, most often in the project or group an
 * ancestor names (`project(fullPath:) { pipelineSchedules }`): an argument of the field (a
 * cursor holding `gid://gitlab/Project/100`, another object's global ID) must not move the check
 * off it, so both are checked. Another object counts only when no project or group is named, as
 * in targetsOfArguments; at most MAX_TARGETS projects, groups and namespaces in all.
 */
function joinTargets (inherited: Targets, own: readonly BoundaryTarget[], fieldName: string): Targets {
  if (own.length === 0) return inherited
  const set = new TargetSet(fieldName, ' and of the fields around it')
  for (const target of inherited) set.add(target)
  for (const target of own) set.add(target)
  return orNone(set.targets())
}

/**
 * Where a selection is read: its response path, the targets its nearest arguments name, and the
 * object types its object may be at run time (null: not known, an operation's root or a scalar).
 */
interface Frame { readonly path: string[], readonly targets: Targets, runtime: readonly GraphQLObjectType[] | null }

function readWithoutSchema (op: OperationDefinitionNode, reader: OperationReader, fragments: ReadonlyMap<string, FragmentDefinitionNode>, variables: Readonly<Record<string, unknown>>): void {
  for (const field of rootFields(op.selectionSet, fragments)) {
    const name = field.name.value
    if (name.startsWith('__')) continue
    const path = field.alias?.value ?? name
    const kind = op.operation === 'mutation' ? 'mutation' : 'field'
    const catalogName = kind === 'mutation' ? name : `${ROOT_TYPE[op.operation]}.${name}`
    for (const target of rootTargets(argumentValues(field, variables), name, reader.standalone(kind, catalogName))) {
      reader.record(kind, catalogName, path, target, true, true)
    }
  }
}

function readWithSchema (schema: GraphQLSchema, op: OperationDefinitionNode, reader: OperationReader, fragments: ReadonlyMap<string, FragmentDefinitionNode>, variables: Readonly<Record<string, unknown>>): void {
  const mutationType = schema.getMutationType()?.name
  const rootTypes = new Set([schema.getQueryType()?.name, mutationType, schema.getSubscriptionType()?.name])
  const recordType = (type: GraphQLNamedType, path: string, targets: Targets): void => {
    for (const target of targets) {
      if (isObjectType(type)) {
        if (!WRAPPER_TYPE.test(type.name)) reader.record('type', type.name, path, target)
      }
      // An interface or union field may return any of its object types: each is checked as GitLab
      // checks the object it resolves.
      else if (isAbstractType(type)) for (const possible of schema.getPossibleTypes(type)) reader.record('type', possible.name, path, target)
    }
  }
  /**
   * A fragment's type condition: the object type GitLab may resolve there, read with the
   * selection it stands in (an object type that is no possible type of the field in this schema
   * is one in a newer GitLab's). A type this schema does not have is refused, as a field it does
   * not have is: what is selected under it cannot be typed, so nothing there would be checked.
   */
  const typeCondition = (name: string | undefined, here: Frame): void => {
    if (name === undefined || rootTypes.has(name)) return
    const type = schema.getType(name)
    if (type === undefined) reader.note(`type ${name} (not in the schema)`)
    else if (isObjectType(type)) recordType(type, here.path.join('.'), here.targets)
  }
  /**
   * The object types a selection under a type condition may run on: the enclosing ones that are
   * of the condition's type (an object type: that one, as above, even where the schema does not
   * list it there); where the schema says none is (a newer GitLab's interface), the enclosing
   * ones and every object type of the condition.
   */
  const narrow = (runtime: Frame['runtime'], name: string | undefined): Frame['runtime'] => {
    const type = name === undefined ? undefined : schema.getType(name)
    if (type === undefined) return runtime
    if (isObjectType(type)) return [type]
    if (!isAbstractType(type)) return runtime
    const possible = schema.getPossibleTypes(type)
    const both = runtime?.filter(r => possible.includes(r)) ?? []
    return both.length > 0 ? both : [...(runtime ?? []), ...possible]
  }
  const visited = new Set<string>()
  // `chain`: the fragments being read around this one. A fragment that spreads itself, however
  // deep, is invalid GraphQL (NoFragmentCycles) and read once.
  const walk = (node: ASTNode, start: Frame, chain: ReadonlySet<string>): void => {
    const typeInfo = new TypeInfo(schema)
    const stack: Frame[] = [start]
    visit(node, visitWithTypeInfo(typeInfo, {
      Field: {
        enter (field) {
          const here = stack[stack.length - 1]!
          const name = field.name.value
          // `__typename`, and introspection (`__schema`, `__type`) with everything under it: GitLab's
          // schema metadata, not its types (graphql-ruby's introspection types carry no GitLab
          // authorization). Returning false skips the subtree; TypeInfo leaves the field itself.
          if (name.startsWith('__')) return false
          const path = [...here.path, field.alias?.value ?? name]
          const args = argumentValues(field, variables)
          const targets = joinTargets(here.targets, targetsOfArguments(args, name), name)
          const frame: Frame = { path, targets, runtime: null }
          stack.push(frame)
          const parent = typeInfo.getParentType()
          // No parent type: under a field or a fragment's type the schema does not have (noted
          // there), or at the root of an operation type it lacks (a subscription): not typed, so
          // not checkable.
          if (parent === null || parent === undefined) {
            reader.note(`field ${here.path.length === 0 ? `${ROOT_TYPE[op.operation]}.` : ''}${name} (not in the schema)`)
            return
          }
          const where = path.join('.')
          // At the operation's root the targets are the field's own arguments' (boundaryNamed).
          const root = here.path.length === 0
          // A field selected on an interface (`... on Noteable { createNoteEmail }`) runs as the
          // field of the object type GitLab resolves (`Issue.createNoteEmail`), with its permission.
          const owners = isAbstractType(parent) ? here.runtime ?? schema.getPossibleTypes(parent) : null
          const kind = parent.name === mutationType ? 'mutation' : 'field'
          const catalogName = kind === 'mutation' ? name : `${parent.name}.${name}`
          // What is under it is read at `targets`: the fallback of rootTargets is the field's own.
          const checked = root ? rootTargets(args, name, reader.standalone(kind, catalogName)) : targets
          for (const target of checked) {
            if (parent.name === mutationType) reader.record('mutation', name, where, target, true, root)
            // The page lists the fields that need a permission of their own (`Query.project`,
            // `Project.runners`); any other field is read with its object, which its type covers.
            else reader.record('field', `${parent.name}.${name}`, where, target, rootTypes.has(parent.name), root)
            for (const owner of owners ?? []) reader.record('field', `${owner.name}.${name}`, where, target, false)
          }
          const type = typeInfo.getType()
          const named = getNamedType(type)
          if (named === null || named === undefined) {
            reader.note(`field ${parent.name}.${name} (not in the schema)`)
            return
          }
          recordType(named, where, targets)
          frame.runtime = isObjectType(named) ? [named] : isAbstractType(named) ? schema.getPossibleTypes(named) : null
        },
        leave () { stack.pop() }
      },
      InlineFragment: {
        enter (fragment) {
          const here = stack[stack.length - 1]!
          const condition = fragment.typeCondition?.name.value
          typeCondition(condition, here)
          stack.push({ ...here, runtime: narrow(here.runtime, condition) })
        },
        leave () { stack.pop() }
      },
      FragmentDefinition (fragment) { typeCondition(fragment.typeCondition.name.value, stack[stack.length - 1]!) },
      FragmentSpread (spread) {
        const here = stack[stack.length - 1]!
        const fragment = fragments.get(spread.name.value)
        if (fragment === undefined) throw new GraphqlDocumentError(`unknown fragment "${spread.name.value}"`)
        const runtime = narrow(here.runtime, fragment.typeCondition.name.value)
        const key = `${spread.name.value} ${here.path.join('.')} ${JSON.stringify(here.targets)} ${runtime?.map(r => r.name).join(',') ?? ''}`
        if (visited.has(key) || chain.has(spread.name.value)) return
        visited.add(key)
        // The fragment is read where it is spread: same response path, same boundary.
        walk(fragment, { path: here.path, targets: here.targets, runtime }, new Set([...chain, spread.name.value]))
      }
    }))
  }
  walk(op, { path: [], targets: NO_TARGET, runtime: null }, new Set())
}

export interface ExplainOptions {
  readonly variables?: Readonly<Record<string, unknown>>
  readonly schema?: GraphQLSchema
  /** Only this operation (GraphQL's `operationName`). */
  readonly operationName?: string
}

export function explainGraphql (document: DocumentNode, index: GraphqlCatalogIndex, options: ExplainOptions = {}): GraphqlExplanation {
  const fragments = new Map<string, FragmentDefinitionNode>()
  const operations: OperationDefinitionNode[] = []
  for (const def of document.definitions) {
    if (def.kind === AstKind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def)
    else if (def.kind === AstKind.OPERATION_DEFINITION) operations.push(def)
  }
  if (operations.length === 0) throw new GraphqlDocumentError('the document has no operation')
  let chosen = operations
  if (options.operationName !== undefined) {
    chosen = operations.filter(op => op.name?.value === options.operationName)
    if (chosen.length === 0) throw new GraphqlDocumentError(`no operation named "${options.operationName}" (the document has ${operations.map(op => op.name?.value ?? '(anonymous)').join(', ')})`)
  }
  const outer = analysis
  analysis = { found: new Map(), texts: new Map() }
  try {
    return {
      schema: options.schema !== undefined,
      operations: chosen.map(op => {
        const reader = new OperationReader(index)
        const variables = operationVariables(op, options.variables ?? {})
        if (options.schema === undefined) readWithoutSchema(op, reader, fragments, variables)
        else readWithSchema(options.schema, op, reader, fragments, variables)
        return { name: op.name?.value ?? '(anonymous)', operation: op.operation, touches: reader.touches, notInCatalog: reader.notInCatalog, unlisted: reader.unlisted }
      })
    }
  } finally {
    analysis = outer
  }
}

export function describeTarget (target: BoundaryTarget | null): string {
  if (target === null) return 'no project or group in the arguments'
  const what = target.kind === 'object' ? `${target.model ?? 'object'} ${target.id ?? ''} (its project or group)` : `${target.kind} ${target.path !== undefined ? JSON.stringify(target.path) : target.id ?? ''}`
  return `${what}, from ${target.from}`
}

export function formatGraphqlExplanation (result: GraphqlExplanation): string {
  const lines: string[] = []
  if (!result.schema) lines.push('no schema given (--schema or GATE_GRAPHQL_SCHEMA): only mutations and root query fields are matched; types and nested fields need the schema (the gate reads /api/graphql the same way)')
  for (const op of result.operations) {
    lines.push(`operation ${op.name} (${op.operation})`)
    if (op.touches.length === 0) lines.push('  touches nothing the catalog lists')
    for (const t of op.touches) {
      const needs = [...new Set(t.permissions.map(p => p.permission))].map(permission => `${permission} (${t.permissions.filter(p => p.permission === permission).map(p => p.boundary).join(', ')})`).join(', ')
      const plain = t.name.slice(t.name.lastIndexOf('.') + 1)
      lines.push(`  ${t.kind.padEnd(8)} ${t.name}${t.path !== '' && t.path !== plain && t.path !== t.name ? ` at ${t.path}` : ''}`)
      lines.push(`           needs ${needs}; applies to ${describeTarget(t.target)}`)
    }
    if (op.notInCatalog.length > 0) lines.push(`  not in the catalog, refused to fine-grained tokens at /api/graphql: ${op.notInCatalog.join(', ')}`)
  }
  return lines.join('\n') + '\n'
}
