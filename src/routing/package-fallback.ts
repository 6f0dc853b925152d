// A package upload or delete on a route the catalog does not list (one a later GitLab added, as
// Cargo's publish call once was): a job token there is stripped or refused (GitLab reads none on
// a route the catalog misses, src/gate/pipeline.ts), but a user's request is forwarded, and the
// accessed project's rule keeping that format's writes to Maintainers would be skipped. Such a
// request is held to the rule of the format its path names, as if the catalog listed it.
//
// The model registry is written outside `/packages/ml_models/` too: GitLab's MLflow API creates,
// updates and deletes registered models and model versions (lib/api/ml/mlflow/registered_models.rb,
// model_versions.rb: `write_model_registry`), whose files are `ml_model` packages. It takes no job
// token, so only users' requests reach it; they are held to the `ml_model` rule here as well.
//
// And outside the API: GitLab's web UI deletes a registry model by its own route (below).

import { packageFormatOf, packageOperationOf } from '../catalog/import.ts'
import { ANY_PACKAGE_FORMAT, type CatalogRoute, type Method } from '../catalog/types.ts'
import type { RouteMatch } from './router.ts'

const PROJECT_PACKAGE_PATH = /^\/projects\/([^/]+)(\/packages\/[a-z_]+(?:\/.*)?)$/
// A project's Debian distributions API (lib/api/concerns/packages/debian_distribution_endpoints.rb)
// creates and updates distributions behind authorize_create_package! and deletes them behind
// authorize_destroy_package!, as Debian uploads and deletes are: a Debian write or delete of the
// project (packageFormatOf). The catalog lists its routes; a method it does not is held so too.
const PROJECT_DEBIAN_DISTRIBUTIONS = /^\/projects\/([^/]+)\/debian_distributions(?:\/.*)?$/
const WRITES: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
/**
 * The MLflow API of a project (lib/api/ml/mlflow/entrypoint.rb, mlflow_artifacts/entrypoint.rb):
 * `.../mlflow/<resource>/<action>` or `.../mlflow-artifacts/...`.
 */
const PROJECT_MLFLOW_PATH = /^\/projects\/([^/]+)\/ml\/mlflow\/api\/2\.0\/(?:mlflow\/(registered-models|model-versions)(?:\/([^/]*))?|(mlflow-artifacts))(?:\/.*)?$/
/** The model registry's actions that are reads though sent as POST (registered_models.rb; MLflow's search). */
const MLFLOW_POST_READS: ReadonlySet<string> = new Set(['get-latest-versions', 'search'])
/** One frozen route per method, format and operation (at most 4 × 15 × 2), and per MLflow operation. */
const routes = new Map<string, CatalogRoute>()

/**
 * The match a catalog route of the same format and operation would give (method, API path), for
 * the users' package rules only; null for reads and for paths of no project's package format.
 */
export function uncataloguedPackageWrite (method: string, apiPath: string): RouteMatch | null {
  if (!WRITES.has(method)) return null
  if (apiPath.includes('/ml/mlflow/')) return modelRegistryWrite(method, apiPath)
  const distributions = PROJECT_DEBIAN_DISTRIBUTIONS.exec(apiPath)
  const m = distributions ?? PROJECT_PACKAGE_PATH.exec(apiPath)
  if (m === null) return null
  const pattern = distributions !== null ? '/projects/:id/debian_distributions' : '/projects/:id' + m[2]!
  const format = packageFormatOf(pattern)
  if (format === undefined || format === ANY_PACKAGE_FORMAT) return null
  // PATCH is a write, as PUT (packageOperationOf reads the catalog's methods).
  const operation = packageOperationOf((method === 'PATCH' ? 'PUT' : method) as Method, pattern)
  if (operation === 'read') return null
  let id: string
  try {
    id = decodeURIComponent(m[1]!)
  } catch {
    return null
  }
  const key = `${method} ${format} ${operation}`
  let route = routes.get(key)
  if (route === undefined) {
    route = Object.freeze({
      id: `uncatalogued_${format}_${operation}`,
      method: method as Method,
      pattern: `/projects/:id/packages/${format}/*`,
      policies: [],
      skipPolicies: false,
      resource: 'packages',
      title: `A ${format} package ${operation} the catalog does not list`,
      accessedProject: 'project',
      packageFormat: format,
      packageOperation: operation
    })
    routes.set(key, route)
  }
  return { route, params: Object.freeze(Object.assign(Object.create(null) as Record<string, string>, { id })), format: false }
}

/**
 * A user's write or delete of the model registry through the MLflow API, as an `ml_model` write
 * or delete of the project: creating and updating registered models and model versions (and any
 * other change there, a tag or an alias of a later GitLab) is a write; a DELETE, or the `delete`
 * action, a delete (GitLab's `delete` destroys the model with its packages). POSTs that only read
 * (`get-latest-versions`, `search`) are reads. `mlflow-artifacts` serves model files, read only
 * in GitLab today: a write there stores them. Runs and experiments are experiment tracking
 * (`write_model_experiments`), no model registry: null.
 */
function modelRegistryWrite (method: string, apiPath: string): RouteMatch | null {
  const m = PROJECT_MLFLOW_PATH.exec(apiPath)
  if (m === null) return null
  // Grape's optional format (`delete.json`) names the same action (cut at the first '.' by
  // hand: a pattern of `.` then anything to the end backtracks quadratically on a run of dots).
  const segment = m[3] ?? ''
  const dot = segment.indexOf('.')
  const action = dot === -1 ? segment : segment.slice(0, dot)
  if (m[4] === undefined && method === 'POST' && MLFLOW_POST_READS.has(action)) return null
  const operation = method === 'DELETE' || (m[4] === undefined && action === 'delete') ? 'delete' : 'write'
  let id: string
  try {
    id = decodeURIComponent(m[1]!)
  } catch {
    return null
  }
  const key = `${method} mlflow ${operation}`
  let route = routes.get(key)
  if (route === undefined) {
    route = Object.freeze({
      id: `mlflow_ml_model_${operation}`,
      method: method as Method,
      pattern: '/projects/:id/ml/mlflow/api/2.0/*',
      policies: [],
      skipPolicies: false,
      resource: 'packages',
      title: `A model registry ${operation} through the MLflow API`,
      accessedProject: 'project',
      packageFormat: 'ml_model',
      packageOperation: operation
    })
    routes.set(key, route)
  }
  return { route, params: Object.freeze(Object.assign(Object.create(null) as Record<string, string>, { id })), format: false }
}

/**
 * GitLab's model registry page deletes a model outside the API:
 * `DELETE /<namespace>/<project>/-/ml/models/:model_id` (config/routes/project.rb;
 * Projects::Ml::ModelsController#destroy, behind `write_model_registry`, which Developers have).
 * Its `@model.destroy!` removes the model and, by the database's cascade, every version of it,
 * without the package checks of mlModelDestroy (Ml::DestroyModelService marks the model's packages
 * for destruction behind `destroy_package` first): an `ml_model` delete of the project, as
 * mlModelDelete is. The page's link sends a POST that Rack::MethodOverride routes by its
 * `_method`, so every method but a read is held so (the route takes no other). Rails draws the
 * project routes under an organization's `/o/:organization_path` too: a path that may be read so
 * gives both projects, each checked.
 */
const WEB_MODEL_DELETE = /^\/(.+)\/-\/ml\/models\/[^/]+$/
const ORGANIZATION_SCOPE = /^o\/[^/]+\/(.+)$/
/**
 * The most segments a project's full path has, with room to spare: a group has at most 20
 * ancestors (Namespace::NUMBER_OF_ANCESTORS_ALLOWED), and an organization's scope adds
 * `o/:organization_path`.
 */
const MAX_PROJECT_SEGMENTS = 24
/**
 * The most projects a web model delete's path is checked against (its readings, above). Each costs
 * GitLab calls (the project at the path, then each credential's view where GitLab shows the gate
 * none), none kept for a path naming no project: a path of 25 made-up segments and any Cookie had
 * the gate ask GitLab 48 times. A path with more readings (10 segments or more, a root's included)
 * is refused, WEB_MODEL_DELETE_TOO_DEEP (src/gate/pipeline.ts).
 */
export const MAX_WEB_DELETE_READINGS = 8

export function webModelRegistryDelete (method: string, path: string, relativeUrlRoot: string): RouteMatch[] | null {
  if (!WRITES.has(method)) return null
  if (relativeUrlRoot !== '' && !path.startsWith(relativeUrlRoot + '/')) return null
  const m = WEB_MODEL_DELETE.exec(relativeUrlRoot === '' ? path : path.slice(relativeUrlRoot.length))
  if (m === null) return null
  const full = fullPathOf(m[1]!)
  const scoped = ORGANIZATION_SCOPE.exec(full)?.[1]
  const projects = new Set(scoped === undefined ? [full] : [full, scoped])
  // With no root configured, GitLab may still run under one (`/gitlab`): its root is then any
  // leading segments of the path, and the project it deletes from the rest. Each reading is
  // checked (a path naming no project passes its check), so the project GitLab takes is one.
  if (relativeUrlRoot === '') {
    const segments = m[1]!.split('/')
    for (let i = Math.max(1, segments.length - MAX_PROJECT_SEGMENTS); i <= segments.length - 2; i++) projects.add(fullPathOf(segments.slice(i).join('/')))
  }
  const key = `${method} web ml_model delete`
  let route = routes.get(key)
  if (route === undefined) {
    route = Object.freeze({
      id: 'web_ml_model_delete',
      method: method as Method,
      pattern: '/:namespace/:project/-/ml/models/:model_id',
      policies: [],
      skipPolicies: false,
      resource: 'packages',
      title: 'A model registry delete through GitLab\'s web UI',
      accessedProject: 'project',
      packageFormat: 'ml_model',
      packageOperation: 'delete'
    })
    routes.set(key, route)
  }
  const at = (id: string): RouteMatch => ({ route: route!, params: Object.freeze(Object.assign(Object.create(null) as Record<string, string>, { id })), format: false })
  return [...projects].map(at)
}

/**
 * Whether a path outside a configured relative URL root is such a web delete read without it:
 * GitLab serves its web UI there if the root is wrong, where no project's rule would be held; with
 * the root right, GitLab answers it 404.
 */
export function webModelRegistryDeleteOutsideRoot (method: string, path: string, relativeUrlRoot: string): boolean {
  return relativeUrlRoot !== '' && !path.startsWith(relativeUrlRoot + '/') && webModelRegistryDelete(method, path, '') !== null
}

/** A project's full path as Rails hands the router's glob and segment to the controller (unescaped). */
function fullPathOf (raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}
