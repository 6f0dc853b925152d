// GitLab's GraphQL mutations that delete packages (app/graphql/mutations/packages/), which its
// package registry pages send with the browser session and scripts with a personal access token:
// the users' package rules bind them as they bind `DELETE /projects/:id/packages/...`.
// - `destroyPackageFiles(input: {projectPath, ids})` names its project (GitLab refuses files of
//   another one): that project's strictest delete rule of any format, as the format-agnostic REST
//   route (`DELETE /projects/:id/packages/:package_id/package_files/:id`).
// - `destroyPackage(input: {id})` and `destroyPackages(input: {ids})` name packages by global ID
//   only: the gate asks GitLab, with the service token, which project each package is in and of
//   which format (`package(id:)`, one package per query: GitLab's resolver takes no more), and
//   applies that project's rule for that format. The ID is handed to GitLab as written, so GitLab
//   reads it as the mutation will. A package GitLab does not show the gate (no such package, one
//   being processed or in error, which `package(id:)` hides, or a token that does not see every
//   project) cannot be placed: refused, fail closed.
// - `destroyPackageFile(input: {id})` names a file by global ID, and no API finds a file's
//   package or project: refused to users, naming `destroyPackageFiles`, which does the same with
//   the project named.
// A request with no credential and no cookies is left to GitLab, which deletes nothing for it.

import { ANY_PACKAGE_FORMAT } from '../catalog/types.ts'
import { GateError } from '../errors.ts'
import { GitlabUnavailable, type GitlabAnswer, type GitlabClient } from '../gitlab/client.ts'
import type { HeaderSource } from '../identity/credentials.ts'
import type { GraphqlParams } from './graphql.ts'
import { graphqlCaller, graphqlPackageMatch, idText, inputValue, MAX_PROJECT_PATHS, projectPathMatch, readMutations, TOO_MANY_PROJECTS, UNREAD, type MutationsReading } from './model-registry.ts'
import type { SessionAnswer, UserRoleCheck } from './roles.ts'
import { shareLoad, type Waiter } from '../waiters.ts'

/** A document can name one only if its text does (GraphQL names are never escaped). */
export const PACKAGE_DELETE_TEXT = /destroyPackage/

/**
 * Most distinct package IDs looked up for one request: each is one call to GitLab. GitLab's
 * package list pages show 20; a larger `destroyPackages` is refused before any is asked.
 */
export const MAX_PACKAGE_LOOKUPS = 20

export type PackageDelete =
  | { readonly kind: 'project', readonly projectPath: string }
  | { readonly kind: 'packages', readonly ids: readonly string[] }
  | { readonly kind: 'file' }

/** The package delete mutations of a GraphQL request. */
export function packageDeletes (params: GraphqlParams): MutationsReading<PackageDelete> {
  return readMutations(params, PACKAGE_DELETE_TEXT, ({ field, definition, variables }): PackageDelete | null | undefined => {
    switch (field.name.value) {
      case 'destroyPackageFiles': {
        const projectPath = idText(inputValue(field, 'projectPath', definition, variables))
        return projectPath === null ? null : { kind: 'project', projectPath }
      }
      case 'destroyPackage':
      case 'destroyPackages': {
        const ids = globalIds(inputValue(field, field.name.value === 'destroyPackage' ? 'id' : 'ids', definition, variables))
        return ids === null ? null : { kind: 'packages', ids }
      }
      case 'destroyPackageFile':
        return { kind: 'file' }
      default:
        return undefined
    }
  })
}

/**
 * Global IDs as graphql-ruby coerces a list of them: strings, and a single value taken as a list
 * of one. Null when one is not text.
 */
function globalIds (value: unknown): string[] | null {
  if (value === UNREAD) return null
  const items = Array.isArray(value) ? value : [value]
  return items.every((item): item is string => typeof item === 'string') ? items : null
}

// GitLab's PackageTypeEnum as the catalog's format names; any other is every format's.
const FORMATS: Readonly<Record<string, string>> = {
  MAVEN: 'maven', NPM: 'npm', CONAN: 'conan', NUGET: 'nuget', PYPI: 'pypi', COMPOSER: 'composer', GENERIC: 'generic', GOLANG: 'go', DEBIAN: 'debian', RUBYGEMS: 'rubygems', HELM: 'helm', TERRAFORM_MODULE: 'terraform_module', RPM: 'rpm', ML_MODEL: 'ml_model', CARGO: 'cargo'
}

const DELETE_ANY = 'A package delete (any format)'

/** Where a package is, as GitLab shows it to the service token; null: not shown. */
type PackagePlace = { readonly projectId: number, readonly format: string } | null

const PACKAGE_QUERY = 'query gatePackageProject($id: PackagesPackageID!) { package(id: $id) { packageType project { id } } }'

/** `client`: the request's; the lookup is given up once it has gone (LookupDropped, src/waiters.ts). */
async function placeOf (gitlab: GitlabClient, id: string, client: Waiter | undefined): Promise<PackagePlace> {
  if (!gitlab.hasServiceToken || gitlab.post === undefined) return null
  const post = gitlab.post.bind(gitlab)
  // Any cookie has it asked: held to its end, the lookups of clients that had gone held the
  // GitLab client's connections.
  return await shareLoad(client, async signal => await askPlace(post, id, signal), () => {}).pending
}

async function askPlace (post: NonNullable<GitlabClient['post']>, id: string, signal: AbortSignal): Promise<PackagePlace> {
  let answer: GitlabAnswer
  try {
    answer = await post('/api/graphql', { query: PACKAGE_QUERY, variables: { id } }, { endpoint: 'graphql_package', as: 'service', signal })
  } catch (err) {
    if (err instanceof GitlabUnavailable) throw new GateError('PROJECT_LOOKUP_FAILED', LOOKUP_FAILED)
    throw err
  }
  if (answer.status !== 200 || answer.body === undefined) throw new GateError('PROJECT_LOOKUP_FAILED', LOOKUP_FAILED)
  const data = answer.body.data as { package?: { packageType?: unknown, project?: { id?: unknown } | null } | null } | null | undefined
  const found = data?.package
  if (found === undefined || found === null) return null
  const projectId = /^gid:\/\/gitlab\/Project\/([1-9]\d{0,15})$/.exec(String(found.project?.id ?? ''))?.[1]
  if (projectId === undefined || !Number.isSafeInteger(Number(projectId))) throw new GateError('PROJECT_LOOKUP_FAILED', LOOKUP_FAILED)
  return { projectId: Number(projectId), format: FORMATS[String(found.packageType)] ?? ANY_PACKAGE_FORMAT }
}

const UNREADABLE = '400 Bad request - this GraphQL request names a package delete mutation (destroyPackage, destroyPackages, destroyPackageFile, destroyPackageFiles) that the gate cannot read as GitLab would (a document or variables that do not parse, an input.projectPath that is not text, package IDs that are not text), so the project\'s package rules cannot be checked; send the document and its variables as JSON'
const LOOKUP_FAILED = '502 Bad Gateway - the gate could not ask GitLab which project a package this GraphQL request deletes belongs to, so that project\'s package rules cannot be checked; try again later'
const NOT_SHOWN = '403 Forbidden - GitLab does not show the gate which project a package this GraphQL request deletes belongs to (an ID of no package, a package being processed or in error, or a GATE_SERVICE_TOKEN that does not see every project), so that project\'s package rules cannot be checked; delete it through its project: DELETE /api/v4/projects/:id/packages/:package_id'
const FILE_BY_ID = '403 Forbidden - destroyPackageFile names a package file by its ID only, and the gate cannot find which project it belongs to, so that project\'s package rules cannot be checked; use destroyPackageFiles(input: {projectPath, ids}), which deletes the same files naming their project'
const TOO_MANY = `400 Bad request - this GraphQL request deletes more than ${MAX_PACKAGE_LOOKUPS} packages by ID, and the gate asks GitLab for the project of each before forwarding it; send at most ${MAX_PACKAGE_LOOKUPS} in one request`

/**
 * The users' package rules on a GraphQL request's package deletes: null to go on, or the refusal
 * (a GateError: 403 PACKAGE_MAINTAINER_ONLY, PACKAGE_PROJECT_UNCERTAIN, 503 ROLE_CHECK_UNAVAILABLE,
 * 502 PROJECT_LOOKUP_FAILED, 401 CREDENTIAL_AMBIGUOUS, 400 GRAPHQL_NOT_INSPECTABLE,
 * GRAPHQL_TOO_MANY_PACKAGES, GRAPHQL_TOO_MANY_PROJECTS). The caller is as for the model
 * registry's mutations (model-registry.ts): the access token GitLab's GraphQL reads, and the
 * session of its cookies (`session`, `client`: as for graphqlCaller).
 */
export async function checkPackageDeletes (roles: UserRoleCheck, gitlab: GitlabClient, request: HeaderSource, params: GraphqlParams, session: SessionAnswer = {}, client?: Waiter): Promise<GateError | null> {
  const reading = packageDeletes(params)
  if (reading.kind === 'none') return null
  if (reading.kind === 'unreadable') return new GateError('GRAPHQL_NOT_INSPECTABLE', UNREADABLE)
  const caller = graphqlCaller(roles, request, params, session, client)
  if (caller.kind === 'ambiguous') return new GateError('CREDENTIAL_AMBIGUOUS')
  // No one GitLab could sign in: nothing is deleted, and nothing is asked of GitLab.
  if (!caller.signsIn) return null
  if (reading.items.some(d => d.kind === 'file')) return new GateError('PACKAGE_PROJECT_UNCERTAIN', FILE_BY_ID)
  const ids = new Set(reading.items.flatMap(d => d.kind === 'packages' ? d.ids : []))
  if (ids.size > MAX_PACKAGE_LOOKUPS) return new GateError('GRAPHQL_TOO_MANY_PACKAGES', TOO_MANY)
  // A path GitLab finds no project at deletes nothing.
  const matches = [...new Set(reading.items.flatMap(d => d.kind === 'project' ? [d.projectPath] : []))]
    .flatMap(projectPath => projectPathMatch(ANY_PACKAGE_FORMAT, 'delete', projectPath, DELETE_ANY) ?? [])
  if (matches.length > MAX_PROJECT_PATHS) return new GateError('GRAPHQL_TOO_MANY_PROJECTS', TOO_MANY_PROJECTS)
  for (const match of matches) {
    const refused = await caller.check(match)
    if (refused !== null) return refused
  }
  const checked = new Set<string>()
  for (const id of ids) {
    const place = await placeOf(gitlab, id, client)
    if (place === null) return new GateError('PACKAGE_PROJECT_UNCERTAIN', NOT_SHOWN)
    const key = `${place.format} ${place.projectId}`
    if (checked.has(key)) continue
    checked.add(key)
    const refused = await caller.check(graphqlPackageMatch(place.format, 'delete', String(place.projectId), `A package delete (${place.format})`))
    if (refused !== null) return refused
  }
  return null
}
