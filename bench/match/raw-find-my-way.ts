// What bench/match.ts and its counted child (count-child.ts) both build: raw find-my-way holding
// the catalog routes it can hold as written, and lookups' methods as a server hands them over.

import FindMyWay from 'find-my-way'
import type { CatalogRoute } from '../../src/catalog/types.ts'

const ROUTER_OPTIONS = { caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 1 << 20 }

/** Patterns find-my-way can register as written: no glob, optional group or literal after a parameter. */
export function fmwCompatible (route: CatalogRoute): boolean {
  return !/[*()]/.test(route.pattern) && !/:[a-z0-9_]+\./.test(route.pattern)
}

/** find-my-way holding `routes` (those fmwCompatible() accepts); `renamed`: routes whose parameters were named by position. */
export function rawFindMyWay (routes: readonly CatalogRoute[]): { fmw: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>, renamed: number } {
  const fmw = FindMyWay(ROUTER_OPTIONS)
  const noop = (): void => {}
  let renamed = 0
  for (const route of routes) {
    const method = route.method as FindMyWay.HTTPMethod
    try {
      fmw.on(method, route.pattern, noop)
    } catch {
      // Different parameter names at the same position: name them by position instead.
      let slot = 0
      fmw.on(method, route.pattern.replace(/:[a-z0-9_]+/g, () => `:p${slot++}`), noop)
      renamed++
    }
  }
  return { fmw, renamed }
}

const METHODS: Record<string, string> = { GET: 'GET', HEAD: 'HEAD', POST: 'POST', PUT: 'PUT', PATCH: 'PATCH', DELETE: 'DELETE', OPTIONS: 'OPTIONS' }

/** The interned literal of `method`, as node's HTTP parser hands it over (a parsed or built string is not). */
export function internMethod (method: string): string {
  return METHODS[method] ?? method
}
