// The endpoint catalog: every GitLab API route that accepts CI/CD job tokens, with the
// fine-grained policies it needs. Data lives in catalog/*.json; this is its shape.

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const
export type Method = typeof METHODS[number]

/**
 * Where the accessed project (the one whose allowlist decides) comes from:
 * - `project`: the `:id` of a `/projects/:id/...` route (numeric id or URL-encoded full path);
 * - `group`: a `/groups/:id/-/...` or `/group/:id/-/...` route: the project is found from the
 *   resource after routing, not from the URL;
 * - `job`: `/jobs/:id/...`: the project that owns job `:id`;
 * - `token_job`: `/job...`: the token's own job, always self access;
 * - `instance`: instance-wide routes (`/packages/...`): found from the resource after routing.
 */
export type AccessedProjectSource = 'project' | 'group' | 'job' | 'token_job' | 'instance'

/**
 * How the accessed project of a group, instance or job route is found, as GitLab's handler finds
 * it (docs/gitlab-rules.md, "Group and instance routes"); src/projects/ runs the lookup:
 * - `conan_username`: `:package_username` with `+` read as `/` is the project's full path, a
 *   number is its id (lib/api/helpers/packages/conan/api_helpers.rb);
 * - `maven_instance_path`: `*path` minus its last segment is the project's full path, redirects
 *   not followed (lib/api/maven_packages.rb);
 * - `npm_scope_package`: the newest npm package of exactly `*package_name` under the root
 *   namespace named by its `@scope` (lib/api/helpers/packages/npm.rb);
 * - `npm_group_package`, `maven_group_package`: the newest package of that name (and, for Maven,
 *   version) within group `:id`;
 * - `pypi_group_file`: a PyPI file of group `:id`, chosen by GitLab among the packages the job's
 *   user can read: not looked up, left to GitLab;
 * - `job_pipeline`: job `:id`, looked up among the jobs of the token's own pipeline;
 * - `project_id_param`: the project whose id is `:project_id` (an Integer to Grape), whatever the
 *   group: Debian's group pool download (lib/api/debian_group_packages.rb, `find_project!`),
 *   read from the URL as a project route's `:id` is (src/routing/accessed.ts), no lookup;
 * - `none`: the route touches no single project (group indexes, Conan ping and search, npm audits).
 */
export type ProjectFrom =
  | 'conan_username'
  | 'maven_instance_path'
  | 'npm_scope_package'
  | 'npm_group_package'
  | 'maven_group_package'
  | 'pypi_group_file'
  | 'job_pipeline'
  | 'project_id_param'
  | 'none'

export const PROJECT_FROM: readonly ProjectFrom[] = ['conan_username', 'maven_instance_path', 'npm_scope_package', 'npm_group_package', 'maven_group_package', 'pypi_group_file', 'job_pipeline', 'project_id_param', 'none']

export interface CatalogRoute {
  /** Stable identifier, derived from method and pattern; used in logs, metrics and lint output. */
  readonly id: string
  readonly method: Method
  /** The GitLab pattern exactly as the docs write it. */
  readonly pattern: string
  /** Lower-case policy names; all are required. Empty when `skipPolicies`. */
  readonly policies: readonly string[]
  /** The docs' "Unavailable endpoints": accepts job tokens, cannot be assigned policies. */
  readonly skipPolicies: boolean
  readonly resource: string
  readonly title: string
  readonly accessedProject: AccessedProjectSource
  /** Every route but `project` ones: how its accessed project is found. Absent reads as `none`. */
  readonly projectFrom?: ProjectFrom
  /**
   * Package registry routes only: the format whose per-project rules apply (ProjectGrants
   * packageRules), or `any` for the format-agnostic package API (`/projects/:id/packages[/:package_id...]`),
   * where the format is in the package, not the URL. Derived by the importer from the pattern.
   */
  readonly packageFormat?: string
  /** Package registry routes only: what the route does to packages, from method and pattern. */
  readonly packageOperation?: PackageOperation
  /**
   * A write route whose GitLab handler runs as a destroy (`authorize_destroy_package!`) when a
   * request header says so: npm's publish route deprecates versions on `Npm-Command: deprecate`.
   * Such a request is held to the format's delete rule. Derived by the importer.
   */
  readonly packageDeleteWhen?: PackageDeleteWhen
  /**
   * GitLab's route setting `allow_public_access_for_enabled_project_features`: on a public or
   * internal accessed project whose listed features are all at least "enabled" (everyone with
   * access), GitLab skips the allowlist and policy checks. Absent: the route lists none.
   */
  readonly publicAccessFeatures?: readonly ProjectFeature[]
  /**
   * GitLab's `job_token_scope: :project` (the container registry repositories API): a job token
   * reaches only its own project, allowlisted or not (lib/api/helpers.rb, authorized_project_scope?).
   */
  readonly jobTokenScope?: 'project'
  /**
   * A read whose endpoint checks, or renders part of its answer by, an ability ProjectPolicy gives
   * only by role (`read_code`, `read_cluster_agent`, `read_pipeline`), which no parameter keeps
   * out: a job outside the allowlist is refused it even where the project's features are public,
   * since GitLab would answer it by the job user's role (policy/decide.ts, notInScope).
   */
  readonly roleAbility?: string
  /**
   * A /projects/:id route GitLab serves without looking the project up (Conan's ping and
   * credential checks answer 200 whatever the id): its allowed requests are not the project's usage.
   */
  readonly readsNoProject?: true
  /**
   * The route authenticates through GitLab's `authenticate_with` (lib/api/helpers/authentication.rb)
   * and is not on the docs page: it accepts job tokens, and without policies a fine-grained
   * allowlist entry refuses it while a default-permissions entry allows it, as `find_project!` does.
   */
  readonly authenticateWith?: true
  /**
   * The route takes no job token through GitLab's API authentication, but its handler reads one
   * itself (the pipeline trigger API's `token`, app/services/ci/pipeline_trigger_service.rb) and
   * checks the allowlist through ProjectPolicy, never job_token_policies: it skips policies.
   * Not on the docs page.
   */
  readonly handlerReadsToken?: true
}

/** The project features GitLab's routes name in `allow_public_access_for_enabled_project_features`. */
export const PROJECT_FEATURES = ['repository', 'builds', 'environments', 'releases', 'package_registry', 'container_registry', 'issues', 'merge_requests'] as const
export type ProjectFeature = typeof PROJECT_FEATURES[number]

export type PackageOperation = 'read' | 'write' | 'delete'

/** A header (lower case, '-' spelling) and the value that makes GitLab's handler a destroy. */
export interface PackageDeleteWhen {
  readonly header: string
  readonly value: string
}

/** The format-agnostic package API: rules of every format apply, strictest first. */
export const ANY_PACKAGE_FORMAT = 'any'

export interface PolicyDef {
  readonly name: string
  readonly resource: string
  readonly access: 'read' | 'admin'
  /** For admin policies: the read policy it implies (GitLab expands admin_X with read_X). */
  readonly implies?: string
}

export interface PolicyList {
  readonly policies: readonly PolicyDef[]
  /** Names GitLab no longer accepts; the catalog and configuration refuse them. */
  readonly deprecated: readonly string[]
}

export interface Catalog {
  /** Content hash of the routes, to tell catalogs apart in metrics and logs. */
  readonly version: string
  readonly sources: readonly string[]
  readonly routes: readonly CatalogRoute[]
  readonly policies: PolicyList
}

/**
 * Which of GitLab's Conan searches a route is, or null: `instance` (`GET
 * /packages/conan/v1/conans/search?q=`), which names no project in its path and lists the
 * recipes of every project its `q` reaches; `project` (`GET /projects/:id/packages/conan/v1/conans/search?q=`,
 * and v2's), which some GitLab releases answer for a full reference from the project its username
 * names (the instance has no v2 search: no catalog route). Asked on every request to a route:
 * the format first, a property read, before a lookup.
 */
export function conanSearchKind (route: Pick<CatalogRoute, 'method' | 'pattern' | 'packageFormat'>): 'instance' | 'project' | null {
  if (route.packageFormat !== 'conan' || route.method !== 'GET') return null
  return CONAN_SEARCHES.get(route.pattern) ?? null
}
const CONAN_SEARCHES: ReadonlyMap<string, 'instance' | 'project'> = new Map([
  ['/packages/conan/v1/conans/search', 'instance'],
  ['/projects/:id/packages/conan/v1/conans/search', 'project'],
  ['/projects/:id/packages/conan/v2/conans/search', 'project']
])
