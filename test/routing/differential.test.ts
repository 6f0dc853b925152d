// Differential test: the router (find-my-way trie plus leaf matchers) against the slow
// reference oracle (test/helpers/oracle.ts) on a generated corpus of ~15,000 canonical paths.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isDeepStrictEqual } from 'node:util'
import { loadCatalog } from '../../src/catalog/load.ts'
import { Router } from '../../src/routing/router.ts'
import { canonicalize } from '../../src/routing/canonical.ts'
import { createOracle, type OracleMatch } from '../helpers/oracle.ts'
import { generateCorpus } from '../helpers/corpus.ts'
import type { CatalogRoute } from '../../src/catalog/types.ts'

const routes = loadCatalog().routes
const corpus = generateCorpus(routes)

interface Comparison {
  disagreements: string[]
  count: number
  matched: number
  overlapping: number
  seenIds: Set<string>
}

/** Runs router and oracle on every entry; keeps the first 20 disagreements for the message. */
function compare (catalog: readonly CatalogRoute[], entries: ReadonlyArray<{ method: string, path: string }>): Comparison {
  const router = Router.compile(catalog)
  const oracle = createOracle(catalog)
  const disagreements: string[] = []
  let count = 0
  let matched = 0
  let overlapping = 0
  const seenIds = new Set<string>()
  for (const { method, path } of entries) {
    const expected = oracle.match(method, path)
    const found = router.match(method, path)
    const got: OracleMatch | null = found === null ? null : { routeId: found.route.id, params: { ...found.params }, format: found.format }
    if (!isDeepStrictEqual(got, expected)) {
      count++
      if (disagreements.length < 20) {
        disagreements.push(`${method} ${path}\n    oracle: ${JSON.stringify(expected)}\n    router: ${JSON.stringify(got)}`)
      }
    }
    if (expected !== null) {
      matched++
      seenIds.add(expected.routeId)
      if (oracle.allMatches(method, path).length > 1) overlapping++
    }
  }
  return { disagreements, count, matched, overlapping, seenIds }
}

test('router agrees with the reference oracle on the whole corpus', () => {
  assert.ok(corpus.length >= 10_000, `corpus has only ${corpus.length} entries`)
  const { disagreements, count, matched, overlapping, seenIds } = compare(routes, corpus)
  assert.equal(count, 0, `${count} disagreements between router and oracle; the first ${disagreements.length}:\n  ${disagreements.join('\n  ')}`)
  assert.ok(matched / corpus.length >= 0.7, `only ${matched} of ${corpus.length} corpus paths match a route`)
  assert.ok(matched < corpus.length, 'the corpus has no misses')
  assert.ok(overlapping >= 100, `only ${overlapping} corpus paths are matched by several routes`)
  const unmatched = routes.filter(r => !seenIds.has(r.id)).map(r => r.id)
  assert.deepEqual(unmatched, [], 'catalog routes no corpus path matches')
})

test('every corpus path is canonical', () => {
  const bad: string[] = []
  for (const { path } of corpus) {
    const result = canonicalize('GET', '/api/v4' + path)
    if (result.kind !== 'api' || result.apiPath !== path) {
      if (bad.length < 20) bad.push(`${path} -> ${JSON.stringify(result)}`)
    }
  }
  assert.deepEqual(bad, [])
})

// The shipped catalog never makes some of the router's machinery decide anything (a
// `:param.suffix` tying with a plain parameter, a single exact trie node whose integer
// parameter holds a '.' while another route still matches, a contender beating find-my-way's
// answer). This small catalog does, so mutating those code paths fails the test.
const ADVERSARIAL: ReadonlyArray<readonly [string, string]> = [
  ['GET', '/s/:v.mod/e/f'], ['GET', '/s/:name/e/f'], ['GET', '/s/:name/e/*rest'], ['GET', '/s/:item_id/e/g'],
  ['GET', '/s/*path/e/g'], ['GET', '/s/static/e/f'],
  ['GET', '/t/:item_id'], ['GET', '/t/:name.json'], ['GET', '/t/:name.zip'], ['GET', '/t/:file/x'],
  ['GET', '/u/latest*rest'], ['GET', '/u/:name'], ['GET', '/u/latest'], ['GET', '/u/:name/x'],
  ['GET', '/w/*a/-/*b'], ['GET', '/w/*a'], ['GET', '/w/-/x/*c'], ['GET', '/w/:w_id/-/x'],
  ['GET', '/v/:a_id/:b_id/x'], ['GET', '/v/:name/:c_id/y'], ['GET', '/v/*g/z'], ['GET', '/v/:name/:c_id/z'],
  ['GET', '/p/(:opt/)end'], ['GET', '/p/:a_id'],
  ['GET', '/q/:a/:b/:c.mod'], ['GET', '/q/:x/*rest'], ['GET', '/q/:a/:b_id/:c'],
  ['GET', '/m/:k_id/n'], ['GET', '/m/*k/n'], ['GET', '/m/:k_id/n/*more'],
  ['POST', '/s/:item_id/e/g'], ['POST', '/s/:name.mod/e/g'], ['POST', '/projects/:id/r/:r_id'], ['POST', '/projects/:id/r/*rest']
]

test('router agrees with the reference oracle on an adversarial synthetic catalog', () => {
  const synthetic = ADVERSARIAL.map(([method, pattern], i) => ({
    id: `r${i}_${method.toLowerCase()}`, method, pattern, policies: [], skipPolicies: false, resource: 'synthetic', title: pattern, accessedProject: 'instance'
  }) as unknown as CatalogRoute)
  const entries = generateCorpus(synthetic, { seed: 7, perRoute: 120 })
  const { disagreements, count, matched, seenIds } = compare(synthetic, entries)
  assert.equal(count, 0, `${count} disagreements between router and oracle; the first ${disagreements.length}:\n  ${disagreements.join('\n  ')}`)
  assert.ok(matched > entries.length / 2, `only ${matched} of ${entries.length} synthetic paths match`)
  assert.deepEqual(synthetic.filter(r => !seenIds.has(r.id)).map(r => r.pattern), [])
})
