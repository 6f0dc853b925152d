// Finding: the analyses of a fine-grained token's GraphQL operations are kept up to a total size
// (ANALYSIS_CACHE_UNITS, documented as about 6 MB), counted by their touches alone. What an
// analysis holds also keeps its document's text: the operation's name, aliases and paths are V8
// slices of it, which keep the whole text alive, and the cache key holds the operation name as
// sent. One token's 2,000 documents of 40 KB, each naming one project it reaches, held 74 MiB with
// a 17-letter operation name, and 144 MiB with a 39 KB one (sent as `operationName` too), none of
// it bounded by the touches. An analysis now counts its key and its document's text as well.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Pool } from 'undici'
import { startGraphqlGate, type FakeToken } from '../helpers/graphql-gate.ts'
import { heapMiB } from '../helpers/heap.ts'

const TOKENS: Record<string, FakeToken> = {
  'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships', permissions: ['read_project'], project_id: 200 }] }
}

test('the analyses kept hold no more than their count says of their documents\' text', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const pool = new Pool(g.url, { connections: 4 })
  t.after(() => pool.close())
  const padding = 'x'.repeat(39_000)
  const bodies: Array<(i: number) => unknown> = [
    // A name long enough to be a slice of the text, the text padded by a comment.
    i => ({ query: `query LongEnoughName${i.toString(36)} { project(fullPath: "acme/lib") { id } } #${padding}` }),
    // The name itself long, and named again by operationName (the cache key).
    i => {
      const name = `Q${i.toString(36)}${padding}`
      return { query: `query ${name} { project(fullPath: "acme/lib") { id } }`, operationName: name }
    }
  ]
  const sendAll = async (from: number, to: number): Promise<void> => {
    let n = from
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (n < to) {
        const i = n++
        const res = await pool.request({ method: 'POST', path: '/api/graphql', headers: { 'content-type': 'application/json', 'private-token': 'glpat-lib-reader' }, body: JSON.stringify(bodies[i % 2]!(i)) })
        assert.equal(res.statusCode, 200)
        assert.deepEqual(await res.body.json(), { data: { upstream: true } })
      }
    }))
    g.upstream.length = 0
    g.logs.length = 0
  }
  await sendAll(0, 100)
  const filled = heapMiB()
  await sendAll(100, 700)
  const grown = heapMiB() - filled
  // Without the count: about 35 MiB for these 600 (72 KB and 37 KB each).
  assert.ok(grown < 12, `the heap grew by ${grown.toFixed(1)} MiB over 600 more documents`)
})
