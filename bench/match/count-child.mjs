// One matcher of `bench:match --count`, run under callgrind by bench/match.ts: `gate` (the gate's
// canonicalize + router.match, from dist/) or `raw` (find-my-way holding the routes it can hold as
// written), each in a process of its own, as each would run in production. Over IPC: 'ready' once
// warm; then a number n runs n rounds over the lookups and answers; 'exit' ends it.
//
// The inputs are shaped as a server hands them over: every target and path a flat string of its
// own, as JSON.parse makes them (node's HTTP parser gives `req.url` as one), every method the
// interned literal of node's method table.

import FindMyWay from 'find-my-way'
import { readFileSync } from 'node:fs'

const [mode, file, warmRounds] = process.argv.slice(2)
const { routes, fmwRoutes, lookups: listed } = JSON.parse(readFileSync(file, 'utf8'))
const METHODS = { GET: 'GET', HEAD: 'HEAD', POST: 'POST', PUT: 'PUT', PATCH: 'PATCH', DELETE: 'DELETE', OPTIONS: 'OPTIONS' }
const lookups = listed.map(l => ({ method: METHODS[l.method], path: l.path, target: l.target }))

// Results are folded into a sink so no lookup can be optimized away.
let sink = 0
let round
if (mode === 'gate') {
  const { Router } = await import('../../dist/routing/router.js')
  const { API_PREFIX, canonicalize } = await import('../../dist/routing/canonical.js')
  // As the gate builds it (src/gate/server.ts), without a relative URL root.
  const router = Router.compile(routes, { mount: API_PREFIX })
  round = () => {
    for (let i = 0; i < lookups.length; i++) {
      const l = lookups[i]
      const c = canonicalize(l.method, l.target)
      if (c.kind === 'api' && router.matchRequest(c) !== null) sink++
    }
  }
} else if (mode === 'raw') {
  const fmw = FindMyWay({ caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 1 << 20 })
  const noop = () => {}
  for (const route of fmwRoutes) {
    try {
      fmw.on(route.method, route.pattern, noop)
    } catch {
      // Different parameter names at the same position: named by position instead (as bench/match.ts).
      let slot = 0
      fmw.on(route.method, route.pattern.replace(/:[a-z0-9_]+/g, () => `:p${slot++}`), noop)
    }
  }
  round = () => {
    for (let i = 0; i < lookups.length; i++) {
      const l = lookups[i]
      if (fmw.find(l.method, l.path) !== null) sink++
    }
  }
} else {
  throw new Error(`unknown matcher ${mode}`)
}

for (let i = 0; i < Number(warmRounds); i++) round()
// What the warm-up left behind is collected now, not in the counted windows.
globalThis.gc?.()
process.on('message', m => {
  if (m === 'exit') process.exit(0)
  for (let i = 0; i < Number(m); i++) round()
  process.send({ sink })
})
process.send('ready')
