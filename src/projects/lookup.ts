// What the URL of a group, instance or job route says about its accessed project, and which
// GitLab lookup would name it: a pure function of the route's `projectFrom` (catalog data) and
// the matched parameters. GitLab's rules per family, with their source files, are in
// docs/gitlab-rules.md ("Group and instance routes").

import type { CatalogRoute, ProjectFrom } from '../catalog/types.ts'
import { apiSegment, rubyInteger } from '../text.ts'

export type Lookup =
  /** The route touches no single project, or GitLab picks it in a way no lookup can repeat: as today (deferred or denied). */
  | { readonly kind: 'unresolvable', readonly why: string }
  /** The URL alone says there is no project (GitLab answers 404, or forwards npm to the public registry). */
  | { readonly kind: 'no_project', readonly why: string }
  /** `GET /projects/:id`: a Conan username that is a number. */
  | { readonly kind: 'project_id', readonly id: number }
  /** `GET /projects/<full path>`; `followRedirects`: whether a moved project's old path still names it. */
  | { readonly kind: 'project_path', readonly path: string, readonly followRedirects: boolean }
  /**
   * The newest package of exactly this name (and version, or none for Maven's versionless
   * metadata) under a group: `GET /groups/:id/packages?package_type=..&package_name=..`.
   * `group` is an id or a full path, as in the URL.
   */
  | { readonly kind: 'package', readonly group: string, readonly format: 'npm' | 'maven', readonly name: string, readonly version?: string, readonly versionlessName?: string, readonly byLatestFile?: true }
  /**
   * npm: the project GitLab's npm helper finds (`project_id_or_nil`), asked of GitLab's own npm
   * metadata endpoint at the same level: `GET /packages/npm/<name>` (`at: 'instance'`, `group` is
   * the @scope, a root namespace's path) or `GET /groups/<group>/-/packages/npm/<name>`
   * (`at: 'group'`, `group` is `:id` as in the URL).
   */
  | { readonly kind: 'npm_package', readonly at: 'instance' | 'group', readonly group: string, readonly name: string }
  /** Job `:id` among the jobs and bridges of the token's own pipeline. */
  | { readonly kind: 'pipeline_job', readonly jobId: number }

const INTEGER = /^\d+$/
// Packages::Npm.scope_of: `@scope/name` → `scope` (app/models/packages/npm.rb).
const NPM_SCOPE = /^@([^/]+)\/./

export function lookupOf (from: ProjectFrom | undefined, params: Readonly<Record<string, string>>): Lookup {
  switch (from) {
    case 'conan_username': {
      // lib/api/helpers/packages/conan/api_helpers.rb (`project`, instance scope) and
      // app/models/packages/conan/metadatum.rb (full_path_from: `tr('+', '/')`); find_project
      // (lib/api/helpers.rb) takes an integer as an id, a string with `/` as a full path
      // (redirects followed), anything else as nothing.
      const username = params.package_username ?? ''
      if (username === '_') return { kind: 'no_project', why: 'the Conan username "_" names no project at instance level' }
      if (INTEGER.test(username)) {
        const id = Number(username)
        return Number.isSafeInteger(id) && id > 0 ? { kind: 'project_id', id } : { kind: 'no_project', why: 'the Conan username is not a project id' }
      }
      if (!username.includes('+')) return { kind: 'no_project', why: 'the Conan username has no "+": it is not a project path' }
      return { kind: 'project_path', path: username.replaceAll('+', '/'), followRedirects: true }
    }
    case 'maven_instance_path': {
      // lib/api/maven_packages.rb: find_project_by_path: `Project.find_by_full_path(path.rpartition('/').first)`,
      // without follow_redirects.
      const path = params.path ?? ''
      const cut = path.lastIndexOf('/')
      if (cut <= 0) return { kind: 'no_project', why: 'the Maven path has no project part' }
      return { kind: 'project_path', path: path.slice(0, cut), followRedirects: false }
    }
    case 'npm_scope_package': {
      // lib/api/helpers/packages/npm.rb: project_id_or_nil (instance): the root namespace named by the scope.
      const name = params.package_name ?? ''
      const scope = NPM_SCOPE.exec(name)?.[1]
      if (scope === undefined) return { kind: 'no_project', why: 'an unscoped npm package name names no namespace' }
      return { kind: 'npm_package', at: 'instance', group: scope, name }
    }
    case 'npm_group_package':
      return { kind: 'npm_package', at: 'group', group: params.id ?? '', name: params.package_name ?? '' }
    case 'maven_group_package': {
      // lib/api/maven_packages.rb: the package whose Maven path is `path`: `name/version`, or a
      // versionless package (its metadata) named `path`. For maven-metadata.xml outside a
      // -SNAPSHOT path, the one with the latest file (lib/api/helpers/packages/maven.rb,
      // fetch_package: order_by_package_file), which no package list tells.
      const path = params.path ?? ''
      const cut = path.lastIndexOf('/')
      const byLatestFile = byLatestFileOf(params) ? { byLatestFile: true as const } : {}
      if (cut <= 0) return { kind: 'package', group: params.id ?? '', format: 'maven', name: path, versionlessName: path, ...byLatestFile }
      return { kind: 'package', group: params.id ?? '', format: 'maven', name: path.slice(0, cut), version: path.slice(cut + 1), versionlessName: path, ...byLatestFile }
    }
    case 'job_pipeline': {
      // Grape coerces the job's `:id` as Ruby's Integer(value, 10) does (`+5` is job 5).
      const id = rubyInteger(params.id ?? '')
      if (id === null || !Number.isSafeInteger(id) || id < 0) return { kind: 'no_project', why: 'not a job id' }
      return { kind: 'pipeline_job', jobId: id }
    }
    case 'project_id_param':
      // A :project_id Ruby reads as a positive number is that project, decided as /projects/:id
      // (src/routing/accessed.ts) without a lookup; only one that is none comes here.
      return { kind: 'no_project', why: ':project_id is not a project id' }
    case 'pypi_group_file':
      return { kind: 'unresolvable', why: "GitLab picks the file's package among those the job's user can read" }
    case 'none':
    case undefined:
      return { kind: 'unresolvable', why: 'the route touches no single project' }
  }
}

/**
 * The group whose projects a package read serves from where no lookup names one project (PyPI's
 * group files and simple index, Composer, NuGet and Debian group metadata, the Terraform module
 * registry's namespace routes): GitLab's group finders read the packages of every project under
 * it. The group route's `:id`, or the module registry's `:module_namespace` (a top-level group);
 * null for a write, or a route that names no group (the instance's Conan search, npm audits).
 */
export function packageReadGroupOf (route: CatalogRoute, params: Readonly<Record<string, string>>): string | null {
  if (route.packageFormat === undefined || route.packageOperation !== 'read') return null
  const group = route.accessedProject === 'group' ? params.id : params.module_namespace
  return group === undefined || group === '' ? null : group
}

/**
 * Whether the route is npm's package metadata at the instance or group level, which GitLab builds
 * from the packages of that name in every project under the namespace the job's user can read
 * (npm_allow_packages_in_multiple_projects: Packages::Npm::PackagesForUserFinder,
 * lib/api/concerns/packages/npm_namespace_endpoints.rb), not only from the project it finds.
 */
export function servesEveryListedProject (route: CatalogRoute): boolean {
  return route.method === 'GET' && NPM_METADATA.has(route.pattern)
}
const NPM_METADATA: ReadonlySet<string> = new Set(['/packages/npm/*package_name', '/groups/:id/-/packages/npm/*package_name'])

export type ConanSearch =
  /** GitLab lists nothing (`q` is `*`, or has no name). */
  | { readonly kind: 'nothing' }
  /** Only the packages of the project at this full path, if the job's user may read its packages. */
  | { readonly kind: 'project_path', readonly path: string }
  /** The packages of every project the job's user can read: no lookup names them. */
  | { readonly kind: 'every_project' }

/**
 * Which projects GitLab's Conan search at the instance level (conanSearchKind 'instance' in
 * src/catalog/types.ts) reads for `q` (app/services/packages/conan/search_service.rb,
 * app/finders/packages/conan/package_finder.rb): `q` split at every `@` and `/` into name, version
 * and username; without a name nothing, with a username (ActiveSupport's `present?`: not only
 * white space) the project `Project.find_by_full_path` finds at the username with `+` read as `/`,
 * and otherwise every project public or visible to the user. A username without `+` is no full
 * path: no project. Newer GitLab escapes LIKE's `_`, `%` and `\` in the username before the
 * lookup (finding nothing where they occur), older GitLab did not: the unescaped path is decided,
 * which is the project older GitLab reads and, for newer, a stricter check than needed. Some
 * releases in between (SearchService with SinglePackageSearchService) delete every `*` from `q`
 * before splitting it, so `acme+l*ib` reads acme/lib there (newer GitLab reads `*` as LIKE's `%`,
 * which no full path matches): the path is decided with its `*` deleted.
 */
export function conanSearchOf (q: string): ConanSearch {
  if (q === '*') return { kind: 'nothing' }
  const [name = '', , username = ''] = q.split(/[@/]/)
  if (name === '') return { kind: 'nothing' }
  if (RUBY_BLANK.test(username)) return { kind: 'every_project' }
  const path = username.replaceAll('*', '')
  if (!path.includes('+')) return { kind: 'nothing' }
  return { kind: 'project_path', path: path.replaceAll('+', '/') }
}
/**
 * The full path some GitLab releases read a project's Conan search `q` at, whatever the project
 * of the URL (conanSearchKind 'project' in src/catalog/types.ts): their SearchService looks a `q`
 * holding `@` up as one package (SinglePackageSearchService, with every `*` deleted), in the
 * project its username names. Null where that reads no project: no `@`, no name (no package has
 * a blank one), or a username without `+`.
 */
export function conanSingleSearchPathOf (q: string): string | null {
  if (!q.includes('@')) return null
  const [name = '', , username = ''] = q.replaceAll('*', '').split(/[@/]/)
  if (RUBY_BLANK.test(name) || !username.includes('+')) return null
  return username.replaceAll('+', '/')
}
// String#blank? (ActiveSupport): `[[:space:]]`, Unicode White_Space, which JavaScript's `\s` is
// but for U+0085 (and with U+FEFF, which only makes more usernames blank: the refused side).
const RUBY_BLANK = /^[\s\u0085]*$/u

/**
 * The Maven virtual registry a download names (`GET /virtual_registries/packages/maven/:id/*path`):
 * GitLab serves the file from the registry's local upstreams first, GitLab projects and groups
 * (lib/api/virtual_registries/packages/maven/endpoints.rb, VirtualRegistries::Upstreams::CheckService).
 * `:id` is an Integer to Grape, read as Ruby's `Integer(value, 10)`. Null for any other route,
 * and for an `:id` that is no registry id (GitLab answers 400).
 */
export function mavenVirtualRegistryOf (route: CatalogRoute, params: Readonly<Record<string, string>>): number | null {
  if (route.method !== 'GET' || route.pattern !== MAVEN_VIRTUAL_REGISTRY_DOWNLOAD) return null
  const id = rubyInteger(params.id ?? '')
  return id === null || !Number.isSafeInteger(id) || id <= 0 ? null : id
}
const MAVEN_VIRTUAL_REGISTRY_DOWNLOAD = '/virtual_registries/packages/maven/:id/*path'

/**
 * The groups a group route's `:id` may name to GitLab: as written, and, where Ruby's
 * `Integer(value, 10)` reads it as a number (`+10`, `1_0`, ` 10`, `0d10`), that group id too.
 * PyPI's and NuGet's group APIs declare `:id` `types: [Integer, String]`, so Grape coerces it
 * and GitLab serves group 10; the others (`[String, Integer]`) look `0d10` or `1_0` up as the
 * path of a top-level group, which it may be. Whoever checks a group's projects checks both.
 */
export function groupReadingsOf (group: string): readonly string[] {
  const n = rubyInteger(group)
  return n === null || String(n) === group ? [group] : [group, String(n)]
}

/**
 * Hot path: the cache key of what the URL names, built from the raw parameters without parsing
 * them (lookupOf runs on a miss only). Equal keys always give equal lookups. Null: nothing to
 * cache (a route without lookup, a Maven path without a project part, a job).
 */
export function cacheKeyOf (from: ProjectFrom | undefined, params: Readonly<Record<string, string>>): string | null {
  switch (from) {
    case 'conan_username': return `c\n${params.package_username ?? ''}`
    case 'maven_instance_path': {
      const path = params.path ?? ''
      const cut = path.lastIndexOf('/')
      return cut <= 0 ? null : `m\n${path.slice(0, cut)}`
    }
    case 'npm_scope_package': return `n\n${params.package_name ?? ''}`
    case 'npm_group_package': return `ng\n${params.id ?? ''}\n${params.package_name ?? ''}`
    case 'maven_group_package': return `mg${byLatestFileOf(params) ? 'f' : ''}\n${params.id ?? ''}\n${params.path ?? ''}`
    default: return null
  }
}

// GitLab's fetch_package orders by package file for `maven-metadata.xml` (the checksums too) unless the path holds `-SNAPSHOT`.
function byLatestFileOf (params: Readonly<Record<string, string>>): boolean {
  return (params.file_name ?? '').includes('maven-metadata.xml') && !(params.path ?? '').includes('-SNAPSHOT')
}

/** One line for `job-token-gate explain`: how the project would be found. */
export function describeLookup (lookup: Lookup): string {
  switch (lookup.kind) {
    case 'unresolvable': return `not looked up (${lookup.why}): deferred to GitLab or denied, per GATE_UNRESOLVED_PROJECT`
    case 'no_project': return `no project (${lookup.why}): forwarded, GitLab answers`
    case 'project_id': return `project #${lookup.id}: GET /api/v4/projects/${lookup.id}`
    case 'project_path': return `project "${lookup.path}": GET /api/v4/projects/${apiSegment(lookup.path)}` +
      (lookup.followRedirects ? ' (a moved project found through its old path)' : ' (path_with_namespace must match: a moved path is not followed)')
    case 'package': return `the project of the newest ${lookup.format} package named exactly "${lookup.name}"` +
      (lookup.version === undefined ? '' : ` version "${lookup.version}"`) +
      (lookup.format === 'maven' && lookup.versionlessName !== undefined && lookup.version !== undefined ? ` (or the versionless "${lookup.versionlessName}")` : '') +
      ` in group "${lookup.group}": GET /api/v4/groups/${apiSegment(lookup.group)}/packages?package_type=${lookup.format}&package_name=...` +
      (lookup.format === 'maven' ? `, and GET /api/v4/projects/:id/packages of each project under it whose repository is disabled (GET /api/v4/groups/${apiSegment(lookup.group)}/projects), which that list leaves out` : '') +
      (lookup.byLatestFile === true ? '; GitLab takes the package with the latest file here, which no list tells: packages of several projects are refused (PACKAGE_PROJECT_UNCERTAIN)' : '')
    case 'npm_package': return `the project of the newest npm package named exactly "${lookup.name}" ` +
      (lookup.at === 'instance' ? `under the root namespace "${lookup.group}"` : `in group "${lookup.group}"`) +
      ', as GitLab\'s npm metadata names it (every dist.tarball URL is /projects/<id>/packages/npm/...): ' +
      (lookup.at === 'instance' ? `GET /api/v4/packages/npm/${apiSegment(lookup.name)}` : `GET /api/v4/groups/${apiSegment(lookup.group)}/-/packages/npm/${apiSegment(lookup.name)}`) +
      '; tarballs of several projects: the newest in the group\'s package list when that list shows all of them, else refused (PACKAGE_PROJECT_UNCERTAIN)'
    case 'pipeline_job': return `job #${lookup.jobId}: the job's own project when the job is in the token's pipeline (GET /api/v4/projects/:job_project/pipelines/:pipeline/jobs and /bridges), else deferred or denied per GATE_UNRESOLVED_PROJECT`
  }
}
