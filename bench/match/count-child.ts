// One matcher of `bench:match:count`, run under callgrind by bench/match.ts: `gate` (the gate's
// canonicalize + router.matchRequest, from dist/, as the gate runs them) or `raw` (find-my-way
// holding the routes it can hold as written), each in a process of its own, as each would run in
// production. Over IPC: 'ready' once warm; then a number n runs n rounds over the lookups and
// answers; 'exit' ends it.
//
// The inputs are shaped as a server hands them over: every target and path a flat string of its
// own, as JSON.parse makes them (node's HTTP parser gives `req.url` as one), every method the
// interned literal of node's method table.

import { readFileSync } from 'node:fs'
import type { CatalogRoute } from '../../src/catalog/types.ts'
import { internMethod, rawFindMyWay } from './raw-find-my-way.ts'

interface Lookup { method: string, path: string, target: string }
interface Input { routes: CatalogRoute[], fmwRoutes: CatalogRoute[], lookups: Lookup[] }

const [mode, file, warmRounds] = process.argv.slice(2)
const input = JSON.parse(readFileSync(file!, 'utf8')) as Input
const lookups = input.lookups.map(l => ({ method: internMethod(l.method), path: l.path, target: l.target }))

// Results are folded into a sink so no lookup can be optimized away.
let sink = 0
let round: () => void
if (mode === 'gate') {
  // Compiled JavaScript, as production runs it: dist/ (npm run bench:match:count builds it).
  const distRouter = '../../dist/routing/router.js'
  const distCanonical = '../../dist/routing/canonical.js'
  const { Router } = await import(distRouter) as typeof import('../../src/routing/router.ts')
  const { API_PREFIX, canonicalize } = await import(distCanonical) as typeof import('../../src/routing/canonical.ts')
  // As the gate builds it (src/gate/server.ts), without a relative URL root.
  const router = Router.compile(input.routes, { mount: API_PREFIX })
  round = () => {
    for (let i = 0; i < lookups.length; i++) {
      const l = lookups[i]!
      const c = canonicalize(l.method, l.target)
      if (c.kind === 'api' && router.matchRequest(c) !== null) sink++
    }
  }
} else if (mode === 'raw') {
  const { fmw } = rawFindMyWay(input.fmwRoutes)
  round = () => {
    for (let i = 0; i < lookups.length; i++) {
      const l = lookups[i]!
      if (fmw.find(l.method as Parameters<typeof fmw.find>[0], l.path) !== null) sink++
    }
  }
} else {
  throw new Error(`unknown matcher ${String(mode)}`)
}

for (let i = 0; i < Number(warmRounds); i++) round()
// What the warm-up left behind is collected now, not in the counted windows.
;(globalThis as { gc?: () => void }).gc?.()
process.on('message', m => {
  if (m === 'exit') process.exit(0)
  for (let i = 0; i < Number(m); i++) round()
  process.send!({ sink })
})
process.send!('ready')
