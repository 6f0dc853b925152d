// Finding: the targets of a field's arguments were read field by field, each time through every
// value the arguments hold, inside input objects and, since lists are read, lists. A variable is
// one value however many fields name it: 100 aliased fields naming one variable of 60,000 entries
// took the analysis of a single 650 KB request over 10 s, and 700 fields (within the document
// limits) over a minute, the gate answering nothing else meanwhile. Anyone with a fine-grained
// personal access token could send it. Each large value, and each long text read as a global ID,
// is now read once per analysis.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { explainGraphql, GraphqlCatalogIndex, parseDocument } from '../../src/graphql/explain.ts'
import { loadGraphqlCatalog } from '../../src/graphql/load.ts'
import { postGraphql, startGraphqlGate } from '../helpers/graphql-gate.ts'

const TOKENS = { 'glpat-lib-reader': { userId: 7, scopes: [{ access: 'selected_memberships' as const, permissions: ['read_project'], project_id: 200 }] } }
const pat = { 'private-token': 'glpat-lib-reader' }
const INDEX = new GraphqlCatalogIndex(loadGraphqlCatalog())
const fields = (n: number, target: string): string => Array.from({ length: n }, (_, i) => `a${i}:project(fullPath:"${target}",x:$v){id}`).join(' ')

/** `value` behind a proxy that counts how often its entries are walked: an object's keys listed, a list's first item read. */
function counted<T extends object> (value: T): { proxy: T, walks: () => number } {
  let walks = 0
  const list = Array.isArray(value)
  const proxy = new Proxy(value, {
    ownKeys (target) {
      if (!list) walks++
      return Reflect.ownKeys(target)
    },
    get (target, key, receiver) {
      if (list && key === '0') walks++
      return Reflect.get(target, key, receiver)
    }
  })
  return { proxy, walks: () => walks }
}

test('one variable named by many fields is walked once per analysis, not once per field', () => {
  const list = counted(Array.from({ length: 1000 }, () => ({})))
  const object = counted(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [String(i), {}])))
  for (const [kind, v] of [['list', list], ['object', object]] as const) {
    const result = explainGraphql(parseDocument(`query($v:[X]){${fields(300, 'acme/lib')}}`), INDEX, { variables: { v: v.proxy } })
    assert.equal(result.operations[0]!.touches.length > 0, true)
    // Read field by field, 300 fields walked it 300 times: a list of 120,000 items took 12 s.
    assert.equal(v.walks(), 1, `${kind}: walked ${v.walks()} times`)
  }
  // A new analysis reads it again: nothing is kept across requests.
  explainGraphql(parseDocument(`query($v:[X]){${fields(2, 'acme/lib')}}`), INDEX, { variables: { v: list.proxy } })
  assert.equal(list.walks(), 2)
})

test('through the gate: large variables named by many fields are answered, and a target inside them is still checked', async (t) => {
  const g = await startGraphqlGate(t, { tokens: TOKENS })
  const values = {
    list: Array.from({ length: 120_000 }, () => ({})),
    object: Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [String(i), {}])),
    // A long text read as a global ID (the base64 form), remembered too.
    text: 'Z2lkO' + Buffer.from('gid://gitlab/Issue/1' + 'a'.repeat(600_000)).toString('base64url').slice(5)
  }
  for (const [kind, v] of Object.entries(values)) {
    const allowed = await postGraphql(g.url, { query: `query($v:[X]){${fields(300, 'acme/lib')}}`, variables: { v } }, pat)
    assert.equal(allowed.status, 200, allowed.text)
    assert.deepEqual(allowed.body, { data: { upstream: true } }, `${kind}: ${allowed.text.slice(0, 300)}`)
  }
  // Read once, still checked: a project in the variable is a target of every field naming it.
  const hidden = await postGraphql(g.url, { query: `query($v:[X]){${fields(50, 'acme/lib')}}`, variables: { v: [...values.list.slice(0, 1000), { p: 'gid://gitlab/Project/300' }] } }, pat)
  assert.equal(hidden.body.errors[0].extensions.code, 'GRAPHQL_PERMISSION_MISSING', hidden.text)
  assert.equal(g.upstream.length, 3)
})
