// Whether the gate deciding a request with one catalog route is safe when GitLab may serve it
// with another: Grape takes the first route, in GitLab's mount order, whose expression matches
// (test/security/route-overlaps.test.ts, test/rack/grape-routes.slow.ts).

import { paramAllowsDots, parsePattern } from '../../src/catalog/pattern.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { Router } from '../../src/routing/router.ts'

const OPERATION_RANK: Record<string, number> = { read: 0, write: 1, delete: 2 }

/** Whether `picked` asks at least what `other` asks of a job token, of the same project. */
export function asksAtLeast (picked: CatalogRoute, other: CatalogRoute): boolean {
  if (picked.accessedProject !== other.accessedProject || picked.projectFrom !== other.projectFrom) return false
  // GitLab's `job_token_scope: :project` takes the project's own jobs only.
  if (other.jobTokenScope === 'project' && picked.jobTokenScope !== 'project') return false
  if (other.skipPolicies === true) return true
  if (picked.skipPolicies === true) return false
  if (!other.policies.every(p => picked.policies.includes(p))) return false
  // Public project features pass the policy check when all are enabled: the picked route's must
  // be none, or include every one of the other's (which then must list some).
  const features = picked.publicAccessFeatures
  if (features !== undefined && features.length > 0 && !(other.publicAccessFeatures !== undefined && other.publicAccessFeatures.length > 0 && other.publicAccessFeatures.every(f => features.includes(f)))) return false
  if (other.packageOperation === undefined) return true
  return picked.packageOperation !== undefined && OPERATION_RANK[picked.packageOperation]! >= OPERATION_RANK[other.packageOperation]!
}

/** The literal segments of a route's patterns (every optional form). */
function literals (route: CatalogRoute): Set<string> {
  const out = new Set<string>()
  for (const variant of parsePattern(route.pattern)) for (const token of variant.tokens) if (token.kind === 'static') out.add(token.value)
  return out
}

/**
 * The integer id parameter of `other` that holds a literal segment of `picked` in `params` (the
 * parameters `other` reads from the path): GitLab validates it as an integer and answers 400
 * before the endpoint runs, whichever route Grape takes. Null when there is none.
 */
export function integerHoldingLiteral (other: CatalogRoute, picked: CatalogRoute, params: Readonly<Record<string, string>>): string | null {
  const segments = other.pattern.split('/')
  const fixed = literals(picked)
  for (const [name, value] of Object.entries(params)) {
    const at = segments.findIndex(s => s === `:${name}`)
    if (at === -1 || paramAllowsDots(name, segments[at - 1])) continue
    if (fixed.has(value) && !/^\d+$/.test(value)) return name
  }
  return null
}

const routersAlone = new Map<CatalogRoute, Router>()

/** The parameters of `path` as the gate's router reads them with `route` alone, or null when it does not match. */
export function paramsAlone (route: CatalogRoute, path: string): Readonly<Record<string, string>> | null {
  let router = routersAlone.get(route)
  if (router === undefined) routersAlone.set(route, router = Router.compile([route]))
  return router.match(route.method, path)?.params ?? null
}
