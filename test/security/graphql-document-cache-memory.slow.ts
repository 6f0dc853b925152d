// Finding: the cache of parsed GraphQL documents (fine-grained personal access tokens at
// /api/graphql) is bounded by 2 MiB of text, documented as about 60 MB of syntax trees (30 times
// the text). A document of one-letter fields, `{ a a a ... }`, 10,000 tokens in 20 KB, takes
// 1.8 MB parsed, 90 times its text: 2 MiB of such documents held 180 MiB. A document now counts
// as at least 6 bytes per token, which keeps the cache near the 60 MB it documents.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createDocumentCache } from '../../src/graphql/documents.ts'
import { heapMiB } from '../helpers/heap.ts'

test('documents of many tiny tokens do not hold more memory than the cache documents', () => {
  const cache = createDocumentCache()
  const fields = 'a '.repeat(9990)
  const before = heapMiB()
  for (let i = 0; i < 300; i++) assert.equal(cache.parse(`# ${i}\n{ ${fields}}`).ok, true)
  const held = heapMiB() - before
  assert.ok(held < 75, `the cache holds ${held.toFixed(0)} MiB (${cache.size} documents)`)
})
