// Finding: the analyses of GraphQL documents (which fields with which permissions at which
// targets) of fine-grained personal access tokens were kept in an LRU bounded by count alone,
// 2,000, whatever their size. An analysis holds a touch per field the catalog lists: 2,000
// distinct 28 KB documents of 900 project fields, sent with one fine-grained token (refused or
// not: the analysis comes first), grew the gate's heap from 29 to 648 MiB, past the memory limit
// of the shipped deployments (384 and 512 MiB). The cache is bounded by its entries' size too
// (ANALYSIS_CACHE_UNITS).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Pool } from 'undici'
import { startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { heapMiB } from '../helpers/heap.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}

test('distinct large documents of a fine-grained token do not grow the gate\'s memory without bound', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const pool = new Pool(g.url, { connections: 8 })
  t.after(() => pool.close())
  const fields = Array.from({ length: 900 }, (_, i) => `a${i.toString(36)}:project(fullPath:"${i.toString(36)}"){id}`).join(' ')
  const sendAll = async (from: number, to: number): Promise<void> => {
    let n = from
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (n < to) {
        const i = n++
        const res = await pool.request({ method: 'POST', path: '/api/graphql', headers: { 'content-type': 'application/json', 'private-token': 'glpat-lib-reader' }, body: JSON.stringify({ query: `# ${i}\n{ ${fields} }` }) })
        assert.equal(res.statusCode, 200)
        await res.body.dump()
      }
    }))
    g.logs.length = 0
  }
  // The caches fill first; then 700 more documents must leave the heap where it was.
  await sendAll(0, 300)
  const filled = heapMiB()
  await sendAll(300, 1000)
  const grown = heapMiB() - filled
  assert.ok(grown < 60, `the heap grew by ${grown.toFixed(0)} MiB over 700 more documents`)
  assert.equal(g.upstream.length, 0, 'every document was refused (its projects are not the token\'s)')
})
