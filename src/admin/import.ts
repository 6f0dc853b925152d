// Importing the allowlists GitLab holds today into the gate's store, so that the day the gate
// starts enforcing does not deny every cross-project job (`job-token-gate import-allowlists
// --from-gitlab`, docs/deploy.md "Importing existing allowlists").
//
// Per project, as the service token (lib/api/project_job_token_scope.rb; Maintainer on the
// project, or an administrator):
// - `GET /projects/:id/job_token_scope`: `inbound_enabled`;
// - `GET /projects/:id/job_token_scope/allowlist` and `/groups_allowlist` (paginated): which
//   projects and groups are allowed in. The project list includes the project itself, which
//   needs no entry;
// - GraphQL `project(fullPath) { ciJobTokenScopeAllowlist { projectsAllowlist, groupsAllowlist } }`
//   (app/graphql/types/ci/job_token_scope/allowlist_type.rb, allowlist_entry_type.rb): each
//   entry's `defaultPermissions` and `jobTokenPolicies`, which REST does not show. The field
//   exists since GitLab 17.6 (`jobTokenPolicies` since 17.5, experiments then); on an older GitLab
//   the schema lacks it, there are no fine-grained permissions, and every entry has GitLab's
//   default permissions. `projectsAllowlist` also lists outbound entries: only inbound ones count.
//
// Everything is read first, then written: GitLab failing half-way writes nothing. Each project is
// written through the configuration API's service (src/admin/service.ts): one conditional write,
// validated like any change, with an audit event (operator, `import_allowlist_from_gitlab`, one
// request id for the run). The project's allowlist becomes GitLab's; its package rules, which
// GitLab does not have, are kept. A project whose stored allowlist already says what GitLab says is
// not written: a second run writes nothing, its version and audit log stay as they were.
//
// Once the gate enforces, allowlists are changed through its configuration API, and GitLab's copy
// goes stale: a project whose document was written through that API since the import last wrote it
// (the store records the version the import wrote, StoredGrants.importedVersion; a document stored
// before it kept one has none) is left alone and named in the report, dry run included, so that a
// revocation made through the gate is never undone by GitLab's stale copy. `replaceChanged`
// (`--replace-changed`) replaces them anyway, audited as `import_allowlist_from_gitlab_replacing_changes`.
// The write is conditional on the version the decision read: a change made through the API in
// between is seen, and decided on, again.

import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { GitlabClient, GitlabListAnswer } from '../gitlab/client.ts'
import { GitlabUnavailable } from '../gitlab/client.ts'
import { createGrantCache } from '../grants/cache.ts'
import { GrantsError, GrantsVersionConflictError } from '../grants/errors.ts'
import type { AllowlistEntry, EntryTargetType, InstanceSettings, ProjectGrants, StoredGrants } from '../grants/model.ts'
import type { GrantStore } from '../grants/store.ts'
import type { PolicyIndex } from '../catalog/policy-index.ts'
import { apiSegment } from '../text.ts'
import { createGitlabClient as createLookups } from './auth.ts'
import { AdminError, createAdminService, type ProjectAccess } from './service.ts'
import { entryView } from './views.ts'

/** The import cannot be completed: GitLab refused or did not answer, or what it said cannot be stored. */
export class AllowlistImportError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AllowlistImportError'
  }
}

export interface ImportOptions {
  /** The gate's client of GitLab's API (src/gitlab/client.ts), with the service token. */
  readonly gitlab: GitlabClient
  readonly store: GrantStore
  readonly settings: InstanceSettings
  readonly policies: PolicyIndex
  readonly packageFormats: readonly string[]
  readonly logger: Logger
  /** Projects by id or full path (`--project`); every project the service token can see when empty. */
  readonly projects?: readonly string[]
  /** Print what would be written, write nothing. */
  readonly dryRun?: boolean
  /**
   * Replace projects whose document was changed through the configuration API since the import
   * last wrote it (`--replace-changed`), which are otherwise left alone.
   */
  readonly replaceChanged?: boolean
  /**
   * The store is a Redis store holding no marker, which a dry run does not write (and reads
   * refuse as a loss): new, or it lost everything. A dry run compares each project with an
   * allowlist never configured.
   */
  readonly storeUnmarked?: boolean
  /** One line of the report (summary lines, and with dryRun the entries). */
  readonly out: (line: string) => void
  /** Projects read at once. Default 4. */
  readonly concurrency?: number
}

/** `changed_in_gate`: changed through the configuration API since last imported, left alone. */
export type ProjectOutcome = 'written' | 'unchanged' | 'would_write' | 'gone' | 'changed_in_gate'

export interface ProjectReport {
  readonly projectId: number
  readonly projectPath: string
  readonly outcome: ProjectOutcome
  /** The version written (`written`); the stored one (`changed_in_gate`). */
  readonly version?: number
  /** `changed_in_gate`: the version the import last wrote, absent when it never wrote one the store knows of. */
  readonly importedVersion?: number
  /** `written`, `would_write`: the document had been changed through the configuration API, and is replaced (`replaceChanged`). */
  readonly replacesChanges?: boolean
  readonly entries: number
  /** Entries with fine-grained permissions (default_permissions false). */
  readonly withPolicies: number
  /** Policies GitLab lists that the gate does not accept (deprecated or unknown), left out: narrower, never wider. */
  readonly skipped: readonly string[]
}

export interface ImportReport {
  readonly projects: readonly ProjectReport[]
  /** Whether GitLab's GraphQL had the policies (GitLab 17.6 and later). */
  readonly policiesRead: boolean
}

/** What one project looks like in GitLab. */
interface GitlabScope {
  readonly projectId: number
  readonly projectPath: string
  readonly inboundEnabled: boolean
  readonly entries: readonly AllowlistEntry[]
  readonly skipped: readonly string[]
}

interface GraphqlEntry {
  readonly targetId: number | null
  readonly targetPath: string | null
  readonly defaultPermissions: boolean
  readonly policies: readonly string[]
  readonly addedBy: AllowlistEntry['addedBy']
  readonly createdAt: string | null
}

const ACTION = 'import_allowlist_from_gitlab'
/** The import replacing a document changed through the configuration API since last imported. */
const REPLACE_ACTION = 'import_allowlist_from_gitlab_replacing_changes'
/** Decisions made again when a write through the API comes between the decision and the import's write. */
const DECIDE_ATTEMPTS = 5
const MAX_PROJECT_PAGES = 10_000
/** GitLab's own limit is 200 of each; a longer list is read whole and refused by validation. */
const MAX_ENTRY_PAGES = 10
const GRAPHQL_PAGE = 100

// One query per connection, so each pages on its own cursor.
const allowlistQuery = (connection: 'projectsAllowlist' | 'groupsAllowlist'): string => `
query importAllowlist($fullPath: ID!, $after: String) {
  project(fullPath: $fullPath) {
    id
    ciJobTokenScopeAllowlist {
      ${connection}(first: ${GRAPHQL_PAGE}, after: $after) {
        nodes {
          direction
          defaultPermissions
          jobTokenPolicies
          createdAt
          addedBy { id username }
          target {
            ... on CiJobTokenAccessibleProject { id fullPath }
            ... on CiJobTokenAccessibleGroup { id fullPath }
          }
        }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}`

/** A GraphQL ID of a project, group or user: `gid://gitlab/Project/12`, or the bare number. */
function idOf (value: unknown): number | null {
  const m = typeof value === 'string' || typeof value === 'number' ? /^(?:gid:\/\/gitlab\/\w+\/)?([1-9]\d{0,15})$/.exec(String(value)) : null
  return m === null ? null : Number(m[1])
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** The fields of an entry the decision and the listing read: equal means nothing to write. */
function sameEntry (a: AllowlistEntry, b: AllowlistEntry): boolean {
  return a.targetType === b.targetType && a.targetId === b.targetId && a.targetPath === b.targetPath &&
    a.defaultPermissions === b.defaultPermissions &&
    a.jobTokenPolicies.length === b.jobTokenPolicies.length && a.jobTokenPolicies.every(p => b.jobTokenPolicies.includes(p))
}

function sameAllowlist (doc: ProjectGrants, scope: GitlabScope): boolean {
  // The path too: requests that name the project by path find it by the stored one.
  if (doc.projectPath !== scope.projectPath || doc.inboundEnabled !== scope.inboundEnabled || doc.entries.length !== scope.entries.length) return false
  return scope.entries.every(e => doc.entries.some(d => sameEntry(d, e)))
}

function scopeView (doc: Pick<ProjectGrants, 'inboundEnabled' | 'entries'>): Record<string, unknown> {
  return { inbound_enabled: doc.inboundEnabled, entries: doc.entries.map(entryView) }
}

/** A stored document without what the store adds to it (its version, the import's). */
function withoutVersions (stored: StoredGrants): ProjectGrants {
  const { version: _version, importedVersion: _imported, ...doc } = stored
  return doc
}

/** Raised inside the service's update when the stored allowlist already is GitLab's. */
class Unchanged extends Error {}

export async function importAllowlists (options: ImportOptions): Promise<ImportReport> {
  const { gitlab, out } = options
  const call = (endpoint: string): { endpoint: string, as: 'service' } => ({ endpoint, as: 'service' })
  if (!gitlab.hasServiceToken) throw new AllowlistImportError('GATE_SERVICE_TOKEN is not set: the import reads GitLab with it')
  if (gitlab.post === undefined) throw new TypeError('the GitLab client cannot POST (GraphQL)')
  const post: NonNullable<GitlabClient['post']> = gitlab.post.bind(gitlab)

  /** A GitLab call; no answer becomes the import's error, naming what was being read. */
  const ask = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof GitlabUnavailable) throw new AllowlistImportError(`GitLab did not answer while reading ${what} (${err.reason})`, { cause: err })
      throw err
    }
  }
  const refused = (what: string, status: number): AllowlistImportError =>
    new AllowlistImportError(status === 401 || status === 403
      ? `GitLab refused GATE_SERVICE_TOKEN reading ${what} (${status}): the import needs an administrator's token (with the admin_mode scope where Admin Mode is on), or one with the Maintainer role on every project imported`
      : `GitLab answered ${status} reading ${what}`)

  // Which projects.
  async function listProjects (): Promise<Array<{ id: number, path: string }>> {
    if (options.projects !== undefined && options.projects.length > 0) {
      const found: Array<{ id: number, path: string }> = []
      for (const key of options.projects) {
        const answer = await ask(`project ${key}`, () => gitlab.get(`/api/v4/projects/${apiSegment(key)}`, call('import_project')))
        if (answer.status === 404) throw new AllowlistImportError(`project ${key} was not found in GitLab (or GATE_SERVICE_TOKEN cannot see it)`)
        const id = idOf(answer.body?.id)
        const path = answer.body?.path_with_namespace
        if (answer.status !== 200 || id === null || typeof path !== 'string') throw refused(`project ${key}`, answer.status)
        if (!found.some(p => p.id === id)) found.push({ id, path })
      }
      return found
    }
    // An administrator sees every project without a filter; anyone else lists the projects it
    // maintains (min_access_level filters by membership, an administrator's too). `is_admin` is
    // the account's flag: where Admin Mode is on, a token without `admin_mode` is shown its user's
    // projects only, and the first it does not maintain stops the import, naming the scope.
    const user = await ask('the service token\'s user', () => gitlab.get('/api/v4/user', call('import_user')))
    if (user.status !== 200) throw refused('the service token\'s user (/user)', user.status)
    const filter = user.body?.is_admin === true ? '' : '&min_access_level=40'
    // Keyset pagination: offset pagination of /projects stops at 50 000 items.
    const list: GitlabListAnswer = await ask('the project list', () =>
      gitlab.getList(`/api/v4/projects?simple=true&pagination=keyset&order_by=id&sort=asc${filter}`, call('import_projects'), { maxPages: MAX_PROJECT_PAGES }))
    if (list.status !== 200) throw refused('the project list', list.status)
    if (list.items === undefined || list.truncated) throw new AllowlistImportError('the project list could not be read whole; name the projects with --project')
    return list.items.flatMap(p => {
      const id = idOf(p.id)
      return id !== null && typeof p.path_with_namespace === 'string' ? [{ id, path: p.path_with_namespace }] : []
    })
  }

  let graphqlHasAllowlist = true
  async function readGraphql (project: { id: number, path: string }, connection: 'projectsAllowlist' | 'groupsAllowlist'): Promise<GraphqlEntry[] | null> {
    const entries: GraphqlEntry[] = []
    let after: string | null = null
    for (let page = 0; page < MAX_ENTRY_PAGES; page++) {
      const answer = await ask(`the ${connection} of ${project.path} (GraphQL)`, () =>
        post('/api/graphql', { query: allowlistQuery(connection), variables: { fullPath: project.path, after } }, call('import_graphql')))
      const what = `the ${connection} of ${project.path} (GraphQL)`
      if (answer.status !== 200 || answer.body === undefined) throw refused(what, answer.status)
      const errors = Array.isArray(answer.body.errors) ? answer.body.errors.map(e => String(isRecord(e) ? e.message : e)) : []
      // GitLab before 17.6: no such field, no fine-grained permissions.
      if (errors.some(m => /ciJobTokenScopeAllowlist/.test(m) && /doesn't exist|does not exist/.test(m))) {
        graphqlHasAllowlist = false
        return null
      }
      if (errors.length > 0) throw new AllowlistImportError(`GitLab's GraphQL refused ${what}: ${errors.join('; ').slice(0, 300)}`)
      const data = isRecord(answer.body.data) ? answer.body.data : {}
      // GraphQL finds the project by the path it had when listed, REST read it by id: after a
      // rename that path may be another project's, whose permissions are not this one's.
      if (isRecord(data.project) && idOf(data.project.id) !== project.id) {
        throw new AllowlistImportError(`the allowlist of ${project.path} changed while it was read (GraphQL answered for another project at that path, ${String(data.project.id)}); run the import again`)
      }
      const scope = isRecord(data.project) ? data.project.ciJobTokenScopeAllowlist : undefined
      const list = isRecord(scope) ? scope[connection] : undefined
      if (!isRecord(list) || !Array.isArray(list.nodes)) {
        throw new AllowlistImportError(`GitLab's GraphQL did not show ${what}: the import needs an administrator's token (with the admin_mode scope where Admin Mode is on), or the Maintainer role on the project`)
      }
      for (const node of list.nodes) {
        if (!isRecord(node)) continue
        // Outbound entries (the old, removed direction) decide nothing here.
        if (typeof node.direction === 'string' && node.direction.toLowerCase() !== 'inbound') continue
        const target = isRecord(node.target) ? node.target : {}
        const addedBy = isRecord(node.addedBy) ? idOf(node.addedBy.id) : null
        entries.push({
          targetId: idOf(target.id),
          targetPath: typeof target.fullPath === 'string' ? target.fullPath : null,
          // null: the policies feature is off for the project, and GitLab gives default permissions.
          defaultPermissions: node.defaultPermissions !== false,
          policies: Array.isArray(node.jobTokenPolicies) ? node.jobTokenPolicies.filter((p): p is string => typeof p === 'string') : [],
          addedBy: addedBy === null ? null : { id: addedBy, ...(isRecord(node.addedBy) && typeof node.addedBy.username === 'string' ? { username: node.addedBy.username } : {}) },
          createdAt: typeof node.createdAt === 'string' && !Number.isNaN(Date.parse(node.createdAt)) ? node.createdAt : null
        })
      }
      const info = isRecord(list.pageInfo) ? list.pageInfo : {}
      if (info.hasNextPage !== true) return entries
      if (typeof info.endCursor !== 'string') throw new AllowlistImportError(`GitLab's GraphQL gave no cursor for the next page of ${what}`)
      after = info.endCursor
    }
    throw new AllowlistImportError(`the ${connection} of ${project.path} (GraphQL) has more pages than an allowlist can`)
  }

  async function readScope (project: { id: number, path: string }): Promise<GitlabScope | 'gone'> {
    const base = `/api/v4/projects/${project.id}/job_token_scope`
    const scope = await ask(`the job token scope of ${project.path}`, () => gitlab.get(base, call('import_scope')))
    // Deleted since it was listed.
    if (scope.status === 404) return 'gone'
    if (scope.status !== 200 || typeof scope.body?.inbound_enabled !== 'boolean') throw refused(`the job token scope of ${project.path}`, scope.status)
    const lists: Record<EntryTargetType, ReadonlyArray<Readonly<Record<string, unknown>>>> = { project: [], group: [] }
    for (const [type, suffix] of [['project', 'allowlist'], ['group', 'groups_allowlist']] as const) {
      const what = `the ${suffix} of ${project.path}`
      const list = await ask(what, () => gitlab.getList(`${base}/${suffix}`, call(`import_${suffix}`), { maxPages: MAX_ENTRY_PAGES }))
      if (list.status !== 200) throw refused(what, list.status)
      if (list.items === undefined || list.truncated) throw new AllowlistImportError(`${what} could not be read whole`)
      lists[type] = list.items
    }
    const fine = graphqlHasAllowlist
      ? { project: await readGraphql(project, 'projectsAllowlist'), group: graphqlHasAllowlist ? await readGraphql(project, 'groupsAllowlist') : null }
      : { project: null, group: null }
    const entries: AllowlistEntry[] = []
    const skipped: string[] = []
    const now = new Date().toISOString()
    for (const type of ['project', 'group'] as const) {
      for (const item of lists[type]) {
        const targetId = idOf(item.id)
        // REST names a project by path_with_namespace (BasicProjectDetails); a group's entity
        // (BasicGroupDetails: id, web_url, name) has no path, which GraphQL's node then gives.
        const listed = type === 'project' ? item.path_with_namespace : item.full_path
        let targetPath = typeof listed === 'string' && listed !== '' ? listed : undefined
        if (targetId === null) throw new AllowlistImportError(`the ${type} allowlist of ${project.path} lists an entry without an id`)
        // GitLab's project list includes the project itself: self access needs no entry.
        if (type === 'project' && targetId === project.id) continue
        const nodes = fine[type]
        let settings: { defaultPermissions: boolean, jobTokenPolicies: string[], addedBy: AllowlistEntry['addedBy'], createdAt: string } =
          { defaultPermissions: true, jobTokenPolicies: [], addedBy: null, createdAt: now }
        if (nodes !== null) {
          const path = targetPath === undefined ? null : targetPath.toLowerCase()
          // By id; by path only for a node GitLab gave no id (a path may have changed hands between the two reads).
          const node = nodes.find(n => n.targetId === targetId) ?? nodes.find(n => n.targetId === null && path !== null && n.targetPath?.toLowerCase() === path)
          if (node === undefined) throw new AllowlistImportError(`the allowlist of ${project.path} changed while it was read (${type} ${targetId} is in REST, not in GraphQL); run the import again`)
          // The path of the node found by the entry's id: the same group or project.
          if (targetPath === undefined && node.targetId === targetId && node.targetPath !== null && node.targetPath !== '') targetPath = node.targetPath
          const policies: string[] = []
          if (!node.defaultPermissions) {
            for (const raw of node.policies) {
              const name = raw.toLowerCase()
              if (options.policies.isKnown(name) && !options.policies.isDeprecated(name)) {
                if (!policies.includes(name)) policies.push(name)
              } else {
                skipped.push(`${type} ${targetId}: ${name}`)
              }
            }
          }
          settings = { defaultPermissions: node.defaultPermissions, jobTokenPolicies: policies.sort(), addedBy: node.addedBy, createdAt: node.createdAt ?? now }
        }
        entries.push({
          targetType: type,
          targetId,
          ...(targetPath === undefined ? {} : { targetPath }),
          defaultPermissions: settings.defaultPermissions,
          jobTokenPolicies: settings.jobTokenPolicies,
          addedBy: settings.addedBy,
          createdAt: settings.createdAt
        })
      }
    }
    return { projectId: project.id, projectPath: project.path, inboundEnabled: scope.body.inbound_enabled, entries, skipped }
  }

  // 1. Read everything.
  const projects = await listProjects()
  const scopes: Array<GitlabScope | { gone: true, projectId: number, projectPath: string }> = new Array(projects.length)
  let next = 0
  let failed = false
  const worker = async (): Promise<void> => {
    // After one failure the others stop taking projects: the import is over.
    for (let i = next++; i < projects.length && !failed; i = next++) {
      try {
        const scope = await readScope(projects[i]!)
        scopes[i] = scope === 'gone' ? { gone: true, projectId: projects[i]!.id, projectPath: projects[i]!.path } : scope
      } catch (err) {
        failed = true
        throw err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 4, Math.max(projects.length, 1)) }, worker))

  // 2. Write (or show) each project.
  const grants = createGrantCache({ store: options.store })
  const service = createAdminService({
    store: options.store,
    grants,
    // Writes look nothing up in GitLab: the operator's lookups would go through this client.
    gitlab: createLookups({ client: gitlab }),
    logger: options.logger,
    settings: options.settings,
    policies: () => options.policies,
    packageFormats: () => options.packageFormats
  })
  const requestId = `import-${randomUUID()}`
  const reports: ProjectReport[] = []
  if (options.dryRun === true && options.storeUnmarked === true) out('the Redis store holds no marker (it is new, or lost everything it held): nothing is read from it, and every project is shown against an allowlist never configured')
  try {
    for (const scope of scopes) {
      if ('gone' in scope) {
        reports.push({ projectId: scope.projectId, projectPath: scope.projectPath, outcome: 'gone', entries: 0, withPolicies: 0, skipped: [] })
        out(`${scope.projectPath} (${scope.projectId}): skipped, no longer in GitLab`)
        continue
      }
      const counts = { entries: scope.entries.length, withPolicies: scope.entries.filter(e => !e.defaultPermissions).length, skipped: scope.skipped }
      const base = { projectId: scope.projectId, projectPath: scope.projectPath, ...counts }
      const fresh: ProjectGrants = { projectId: scope.projectId, projectPath: scope.projectPath, inboundEnabled: true, entries: [] }
      const readStored = async (): Promise<StoredGrants | null> => {
        try {
          return options.dryRun === true && options.storeUnmarked === true ? null : await options.store.get(scope.projectId)
        } catch (err) {
          if (err instanceof GrantsError) throw new AllowlistImportError(`the store failed reading ${scope.projectPath} (${scope.projectId}): ${err.message}`, { cause: err })
          throw err
        }
      }
      let report: ProjectReport | undefined
      for (let attempt = 0; report === undefined; attempt++) {
        const stored = await readStored()
        // As the configuration API reads it: with the path GitLab gives the project now.
        const current: ProjectGrants = stored === null ? fresh : { ...withoutVersions(stored), projectPath: scope.projectPath }
        if (sameAllowlist(current, scope)) {
          report = { ...base, outcome: 'unchanged' }
          break
        }
        // Written since the import last wrote it (or by a gate that kept no record): the gate's.
        const changed = stored !== null && stored.importedVersion !== stored.version
        if (changed && options.replaceChanged !== true) {
          report = { ...base, outcome: 'changed_in_gate', version: stored.version, ...(stored.importedVersion === undefined ? {} : { importedVersion: stored.importedVersion }) }
          break
        }
        if (options.dryRun === true) {
          report = { ...base, outcome: 'would_write', ...(changed ? { replacesChanges: true } : {}) }
          break
        }
        const access: ProjectAccess = { projectId: scope.projectId, projectPath: scope.projectPath, actor: { kind: 'operator' }, caller: { kind: 'operator' } }
        try {
          await service.update(access, changed ? REPLACE_ACTION : ACTION, requestId, latest => {
            if (sameAllowlist(latest, scope)) throw new Unchanged()
            // Entries GitLab and the store agree on keep their history (who added them, when).
            const entries = scope.entries.map(e => latest.entries.find(d => sameEntry(d, e)) ?? e)
            const doc: ProjectGrants = { ...latest, projectPath: scope.projectPath, inboundEnabled: scope.inboundEnabled, entries }
            return { doc, before: scopeView(latest), after: scopeView(doc) }
          }, { expectedVersion: stored === null ? 0 : stored.version, imported: true })
          report = { ...base, outcome: 'written', version: await options.store.version(scope.projectId), ...(changed ? { replacesChanges: true } : {}) }
        } catch (err) {
          if (err instanceof Unchanged) report = { ...base, outcome: 'unchanged' }
          // Written by someone else since it was read: decide again on what it holds now.
          else if (err instanceof GrantsVersionConflictError) {
            if (attempt + 1 >= DECIDE_ATTEMPTS) throw new AllowlistImportError(`${scope.projectPath} (${scope.projectId}) kept changing while it was imported; run the import again`, { cause: err })
          } else if (err instanceof AdminError && err.code === 'ADMIN_VALIDATION_FAILED') {
            throw new AllowlistImportError(`${scope.projectPath} (${scope.projectId}) cannot be stored: ${err.issues.map(i => `${i.path} ${i.message}`).join('; ')}`)
          } else if (err instanceof GrantsError) {
            throw new AllowlistImportError(`the store failed writing ${scope.projectPath} (${scope.projectId}): ${err.message}`, { cause: err })
          } else throw err
        }
      }
      if (report === undefined) throw new TypeError('no outcome')
      reports.push(report)
      out(summaryLine(report))
      if (options.dryRun === true && report.outcome === 'would_write') {
        out(`  inbound_enabled ${String(scope.inboundEnabled)}`)
        for (const e of scope.entries) {
          out(`  ${e.targetType} ${e.targetId}${e.targetPath === undefined ? '' : ` ${e.targetPath}`}: ${e.defaultPermissions ? 'default permissions' : e.jobTokenPolicies.length === 0 ? 'no policies' : e.jobTokenPolicies.join(', ')}`)
        }
      }
      for (const s of scope.skipped) out(`  skipped policy (not accepted by the gate) ${s}`)
    }
  } catch (err) {
    const done = reports.filter(r => r.outcome === 'written')
    out(`stopped: ${done.length} project(s) written before the failure (listed above); the others were not written`)
    throw err
  } finally {
    grants.close()
  }
  out(totalsLine(reports, options.dryRun === true, graphqlHasAllowlist))
  return { projects: reports, policiesRead: graphqlHasAllowlist }
}

function summaryLine (r: ProjectReport): string {
  const replacing = r.replacesChanges === true ? ', replacing changes made through the gate\'s configuration API' : ''
  if (r.outcome === 'changed_in_gate') {
    return `${r.projectPath} (${r.projectId}): left alone, changed through the gate's configuration API since it was last imported ` +
      `(version ${r.version ?? '?'}, ${r.importedVersion === undefined ? 'no import recorded' : `imported at version ${r.importedVersion}`}); ` +
      `GitLab's copy differs (${r.entries} entries, ${r.withPolicies} with policies): --replace-changed replaces it anyway`
  }
  const outcome = r.outcome === 'written' ? `written (version ${r.version ?? '?'})${replacing}` : r.outcome === 'would_write' ? `would be written${replacing}` : 'unchanged'
  return `${r.projectPath} (${r.projectId}): ${outcome}; ${r.entries} entries, ${r.withPolicies} with policies, ${r.skipped.length} skipped`
}

function totalsLine (reports: readonly ProjectReport[], dryRun: boolean, policiesRead: boolean): string {
  const n = (o: ProjectOutcome): number => reports.filter(r => r.outcome === o).length
  const sum = (f: (r: ProjectReport) => number): number => reports.reduce((a, r) => a + f(r), 0)
  return `total: ${reports.length} projects, ${dryRun ? `${n('would_write')} would be written` : `${n('written')} written`}, ${n('unchanged')} unchanged, ${n('changed_in_gate') > 0 ? `${n('changed_in_gate')} left alone (changed through the gate), ` : ''}${n('gone')} gone; ` +
    `${sum(r => r.entries)} entries, ${sum(r => r.withPolicies)} with policies, ${sum(r => r.skipped.length)} skipped` +
    (policiesRead ? '' : ' (GitLab\'s GraphQL has no ciJobTokenScopeAllowlist, before 17.6: every entry has default permissions)') +
    (dryRun ? '; dry run, nothing written' : '')
}
