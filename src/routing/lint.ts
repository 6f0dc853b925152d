// `catalog lint`: every pair of routes that some path matches both of, a path that shows it,
// and which route the router gives that path. The output is committed (catalog/overlaps.txt)
// and a test keeps it current, so a catalog change that alters precedence shows up in review.

import type { CatalogRoute } from '../catalog/types.ts'
import { commonPath } from './overlap.ts'
import { parsePattern } from '../catalog/pattern.ts'
import type { Router } from './router.ts'

export interface Overlap {
  readonly a: CatalogRoute
  readonly b: CatalogRoute
  /** An API path (after /api/v4) both routes match. */
  readonly example: string
  /** The route the router answers for `example`: a, b, or a third that beats both. */
  readonly winner: CatalogRoute | null
}

export function findOverlaps (routes: readonly CatalogRoute[], router: Router): Overlap[] {
  const variants = routes.map(route => parsePattern(route.pattern))
  const overlaps: Overlap[] = []
  for (let i = 0; i < routes.length; i++) {
    for (let j = i + 1; j < routes.length; j++) {
      const a = routes[i]!
      const b = routes[j]!
      if (a.method !== b.method) continue
      let example: string[] | null = null
      for (const va of variants[i]!) {
        for (const vb of variants[j]!) {
          example ??= commonPath(va.tokens, vb.tokens)
        }
      }
      if (example === null) continue
      const path = '/' + example.join('/')
      overlaps.push({ a, b, example: path, winner: router.match(a.method, path)?.route ?? null })
    }
  }
  return overlaps
}

export function formatOverlaps (overlaps: readonly Overlap[]): string {
  const lines = [
    '# Overlapping catalog routes: pairs that some path matches both of. Precedence: static before',
    '# parameter before glob, segment by segment (src/catalog/pattern.ts). Regenerate with',
    '# `job-token-gate catalog lint > catalog/overlaps.txt`.',
    `# ${overlaps.length} pairs`,
    ''
  ]
  for (const { a, b, example, winner } of overlaps) {
    const verdict = winner === a ? 'first wins' : winner === b ? 'second wins' : `both lose to ${winner?.id ?? 'nothing'}`
    lines.push(`${a.method} ${a.pattern}`, `${b.method} ${b.pattern}`, `  e.g. ${example} -> ${verdict}${winner !== null ? ` (${winner.id})` : ''}`, '')
  }
  return lines.join('\n')
}
