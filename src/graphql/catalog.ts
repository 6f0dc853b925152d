// The GraphQL catalog: what a fine-grained personal access token may touch in GitLab's GraphQL
// API, read from GitLab's docs page "Fine-grained permissions for personal access tokens in the
// GraphQL API" (catalog/sources/graphql-pat-permissions.md). GitLab generates that page
// (`rake gitlab:permissions:graphql:compile_docs`) from the `authorize_granular_token`
// directives on its types and mutations (app/graphql/), one table per resource:
//
//   <Category> resources            e.g. "CI/CD resources"
//   <Resource>                      e.g. "Job Token Scope Allowlist"
//   Grants the ability to ...
//   | Action | Access | Kind | Name |
//
// The page as kept is rendered text, without Markdown heading marks: a heading is told by its
// place (a category line ends in " resources"; a resource heading is the line before "Grants").

import { createHash } from 'node:crypto'
import { basename } from 'node:path'

export const BOUNDARIES = ['Project', 'Group', 'Instance', 'User'] as const
export const KINDS = ['Type', 'Mutation', 'Field'] as const
export type Boundary = typeof BOUNDARIES[number]
export type Kind = typeof KINDS[number]

export interface GraphqlPermissionEntry {
  /** Stable permission name: action + resource in snake_case (`permissionName`). */
  readonly permission: string
  readonly action: string
  /** The resource heading, e.g. "Job Token Scope Allowlist". */
  readonly resource: string
  /** The group heading, e.g. "CI/CD resources". */
  readonly category: string
  readonly boundary: Boundary
  readonly kind: Kind
  /** The name GitLab's schema uses: a type name, a mutation field (`vulnerabilityCreate`) or `Parent.field`. */
  readonly graphqlName: string
  /** The name as the page writes it (mutations: the mutation class's GraphQL name, `VulnerabilityCreate`). */
  readonly pageName: string
}

export interface GraphqlCatalog {
  readonly version: string
  readonly sources: readonly string[]
  readonly entries: readonly GraphqlPermissionEntry[]
}

export class GraphqlImportError extends Error {
  constructor (message: string) {
    super(message)
    // The CLI reports ImportErrors as user errors (one line, exit 2).
    this.name = 'ImportError'
  }
}

/**
 * The permission a row grants: its action and its resource heading, lower-cased, every run of
 * other characters one `_`. "Job Token Scope Allowlist" + "Create" → `create_job_token_scope_allowlist`,
 * "CI/CD Setting" + "Update" → `update_ci_cd_setting`.
 */
export function permissionName (action: string, resource: string): string {
  const snake = (text: string): string => text.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '')
  const a = snake(action)
  const r = snake(resource)
  if (a === '' || r === '') throw new GraphqlImportError(`cannot name the permission of action ${JSON.stringify(action)} on resource ${JSON.stringify(resource)}`)
  return `${a}_${r}`
}

/**
 * The field a mutation is mounted as on GitLab's `Mutation` type: `mount_mutation`
 * (lib/gitlab/graphql/mount_mutation.rb) uses `graphql_name.camelize(:lower)`, which lowers the
 * first letter: `CiJobTokenScopeAddGroupOrProject` → `ciJobTokenScopeAddGroupOrProject`.
 */
export function mutationFieldName (graphqlName: string): string {
  return graphqlName.charAt(0).toLowerCase() + graphqlName.slice(1)
}

const TYPE_NAME = /^[A-Z][A-Za-z0-9_]*$/
// The page writes most mutations by their class's GraphQL name (`TagCreate`), a few already as
// the field (`approvalProjectRuleDelete`): both give the same field.
const MUTATION_NAME = /^[A-Za-z][A-Za-z0-9_]*$/
const NAME_RULE: Readonly<Record<Kind, readonly [RegExp, string]>> = {
  Type: [TYPE_NAME, 'a GraphQL type name'],
  Mutation: [MUTATION_NAME, 'a GraphQL mutation name'],
  Field: [/^[A-Z][A-Za-z0-9_]*\.[a-z_][A-Za-z0-9_]*$/, 'Parent.field']
}
const CATEGORY = /^(.+\S) resources$/
const DESCRIPTION = /^Grants\b/
const TABLE_HEADER = ['Action', 'Access', 'Kind', 'Name']

function cells (line: string): string[] {
  return line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map(cell => cell.trim())
}

/** Reads the page; throws GraphqlImportError naming the line of anything it cannot read. */
export function parseGraphqlPage (text: string, source = 'page'): GraphqlPermissionEntry[] {
  const lines = text.split(/\r?\n/)
  const entries: GraphqlPermissionEntry[] = []
  const seen = new Set<string>()
  let category: string | null = null
  let resource: string | null = null
  let inComment = false
  lines.forEach((raw, index) => {
    const where = `${source}:${index + 1}`
    const line = raw.trim()
    if (inComment || line.startsWith('<!--')) {
      inComment = !line.includes('-->')
      return
    }
    if (line === '') return
    const next = (lines[index + 1] ?? '').trim()
    if (!line.startsWith('|')) {
      const isCategory = CATEGORY.exec(line)
      if (isCategory !== null) {
        if (DESCRIPTION.test(next)) throw new GraphqlImportError(`${where}: "${line}" is followed by a description: the resource heading between them is missing`)
        category = line
        resource = null
      } else if (DESCRIPTION.test(next)) {
        if (category === null) throw new GraphqlImportError(`${where}: resource "${line}" comes before any "... resources" group heading`)
        resource = line
      }
      return
    }
    const row = cells(line)
    if (row.every(cell => /^:?-+:?$/.test(cell))) return
    if (row.join('|') === TABLE_HEADER.join('|')) {
      if (resource === null) throw new GraphqlImportError(`${where}: a table with no resource heading above it`)
      return
    }
    if (row.length !== 4) throw new GraphqlImportError(`${where}: expected 4 cells (${TABLE_HEADER.join(', ')}), found ${row.length}`)
    if (resource === null || category === null) throw new GraphqlImportError(`${where}: a row with no resource heading above it`)
    const [action, boundary, kind, name] = row as [string, string, string, string]
    if (!/^[A-Z][A-Za-z ]*$/.test(action)) throw new GraphqlImportError(`${where}: unreadable action ${JSON.stringify(action)}`)
    if (!(BOUNDARIES as readonly string[]).includes(boundary)) throw new GraphqlImportError(`${where}: unknown boundary ${JSON.stringify(boundary)} (expected ${BOUNDARIES.join(', ')})`)
    if (!(KINDS as readonly string[]).includes(kind)) throw new GraphqlImportError(`${where}: unknown kind ${JSON.stringify(kind)} (expected ${KINDS.join(', ')})`)
    if (name === '') throw new GraphqlImportError(`${where}: empty name`)
    const [rule, expected] = NAME_RULE[kind as Kind]
    if (!rule.test(name)) throw new GraphqlImportError(`${where}: ${kind.toLowerCase()} name ${JSON.stringify(name)} is not ${expected}`)
    const entry: GraphqlPermissionEntry = {
      permission: permissionName(action, resource),
      action,
      resource,
      category,
      boundary: boundary as Boundary,
      kind: kind as Kind,
      graphqlName: kind === 'Mutation' ? mutationFieldName(name) : name,
      pageName: name
    }
    const key = `${entry.permission} ${entry.boundary} ${entry.kind} ${entry.graphqlName}`
    if (seen.has(key)) throw new GraphqlImportError(`${where}: ${key} is listed twice`)
    seen.add(key)
    entries.push(entry)
  })
  if (entries.length === 0) throw new GraphqlImportError(`${source}: no permission tables found`)
  return entries
}

export function graphqlCatalogVersion (entries: readonly GraphqlPermissionEntry[]): string {
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex').slice(0, 12)
}

/** The committed file: one entry per line, so a diff shows exactly which rows changed. */
export function formatGraphqlCatalog (sources: readonly string[], entries: readonly GraphqlPermissionEntry[]): string {
  const head = {
    $schema: './graphql-permissions.schema.json',
    $comment: 'Generated by `job-token-gate catalog import-graphql`; do not edit by hand.',
    version: graphqlCatalogVersion(entries),
    sources: sources.map(s => basename(s))
  }
  const headLines = Object.entries(head).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`)
  const lines = entries.map((entry, i) => `    ${JSON.stringify(entry)}${i === entries.length - 1 ? '' : ','}`)
  return ['{', ...headLines, '  "entries": [', ...lines, '  ]', '}', ''].join('\n')
}

/** Builds graphql-permissions.json from one or more pages; rows listed by several pages count once. */
export function importGraphqlPages (pages: ReadonlyArray<{ source: string, text: string }>): string {
  const byKey = new Map<string, GraphqlPermissionEntry>()
  for (const { source, text } of pages) {
    for (const entry of parseGraphqlPage(text, basename(source))) {
      const key = `${entry.permission} ${entry.boundary} ${entry.kind} ${entry.graphqlName}`
      if (!byKey.has(key)) byKey.set(key, entry)
    }
  }
  return formatGraphqlCatalog(pages.map(p => p.source), [...byKey.values()])
}

export interface SharedName {
  readonly kind: Kind
  readonly graphqlName: string
  /** Every permission that lists the name, in catalog order, with the boundaries it lists it at. */
  readonly permissions: ReadonlyArray<{ readonly permission: string, readonly boundaries: readonly Boundary[] }>
}

/** GraphQL names listed under more than one permission (the same name at several boundaries of one permission is not a clash). */
export function findSharedNames (entries: readonly GraphqlPermissionEntry[]): SharedName[] {
  const byName = new Map<string, { kind: Kind, graphqlName: string, permissions: Map<string, Boundary[]> }>()
  for (const entry of entries) {
    const key = `${entry.kind} ${entry.graphqlName}`
    let slot = byName.get(key)
    if (slot === undefined) byName.set(key, slot = { kind: entry.kind, graphqlName: entry.graphqlName, permissions: new Map() })
    const boundaries = slot.permissions.get(entry.permission) ?? []
    if (!boundaries.includes(entry.boundary)) boundaries.push(entry.boundary)
    slot.permissions.set(entry.permission, boundaries)
  }
  return [...byName.values()]
    .filter(slot => slot.permissions.size > 1)
    .map(slot => ({ kind: slot.kind, graphqlName: slot.graphqlName, permissions: [...slot.permissions].map(([permission, boundaries]) => ({ permission, boundaries })) }))
}

export function formatSharedNames (shared: readonly SharedName[]): string {
  const lines = shared.map(s => `${s.kind.toLowerCase()} ${s.graphqlName}: ${s.permissions.map(p => `${p.permission} (${p.boundaries.join(', ')})`).join(' and ')}`)
  return `${shared.length} GraphQL name${shared.length === 1 ? '' : 's'} listed under more than one permission\n${lines.map(l => l + '\n').join('')}`
}
