// A package upload or delete on a route the catalog does not list (one a later GitLab added, as
// Cargo's publish call once was): a job token there is stripped or refused (GitLab reads none on
// a route the catalog misses, src/gate/pipeline.ts), but a user's request is forwarded, and the
// accessed project's rule keeping that format's writes to Maintainers would be skipped. Such a
// request is held to the rule of the format its path names, as if the catalog listed it.

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
/** One frozen route per method, format and operation (at most 4 × 15 × 2). */
const routes = new Map<string, CatalogRoute>()

/**
 * The match a catalog route of the same format and operation would give (method, API path), for
 * the users' package rules only; null for reads and for paths of no project's package format.
 */
export function uncataloguedPackageWrite (method: string, apiPath: string): RouteMatch | null {
  if (!WRITES.has(method)) return null
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
