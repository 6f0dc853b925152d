// Finding: a form or multipart body at /api/graphql (read whole, up to 1 MiB, with or without a
// token) has its parameter names read as Rack reads them, one bracket level at a time, up to
// Rack's 100. At each level the rest of the name was searched again for a line starting `[]`
// (Rack's `^` is a line anchor): a name of 1 MB nested 98 deep, sent with no token at all, took
// 1.3 s, 1.6 s with a `;` (read both as Rack 2 and Rack 3 split it), the gate answering nothing
// else meanwhile. A level whose name was searched without a match leaves only the first line of
// the rest to look at.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readGraphqlParams } from '../../src/admin/graphql.ts'
import { startGraphqlGate } from '../helpers/graphql-gate.ts'
import { send } from '../helpers/http.ts'

const FORM = 'application/x-www-form-urlencoded'
const LONG = 1_000_000
const deepName = (tail = ''): string => 'a' + '[b]'.repeat(98) + '[' + 'c'.repeat(LONG) + ']' + tail

/** Characters that `fn`'s regular expressions searched: from lastIndex to the end, for each search not tied to the start. */
function searched (fn: () => void): number {
  const exec = RegExp.prototype.exec
  let count = 0
  RegExp.prototype.exec = function (this: RegExp, text: string) {
    if (!this.sticky && !this.source.startsWith('^')) count += String(text).length - this.lastIndex
    return exec.call(this, text)
  }
  try {
    fn()
  } finally {
    RegExp.prototype.exec = exec
  }
  return count
}

test('a long name nested deep is searched once, not once per level', () => {
  for (const body of [`${deepName()}=1`, `${deepName()}=1;`, `${deepName('%0A[]')}=1`, `${deepName('%0A[]x')}=1`]) {
    let readings = 0
    const chars = searched(() => {
      readings = readGraphqlParams(Buffer.from(body), { method: 'POST', contentType: FORM, query: '', bodyReadable: true }).readings.length
    })
    assert.ok(readings > 0)
    // Searched at every level, 98 levels searched 200 million characters.
    assert.ok(chars < 10 * LONG, `${body.slice(-20)}: ${chars} characters searched`)
  }
  // Still read as Rack reads it (Rack 2.2: `{"a"=>[{"x"=>"1"}]}`): a line starting `[]` later
  // in the name makes a list of the first level.
  for (const name of ['a[b][c]%0A[]x', 'a[b][c]%0A[][x]']) {
    const params = readGraphqlParams(Buffer.from(`${name}=1`), { method: 'POST', contentType: FORM, query: '', bodyReadable: true })
    assert.deepEqual(JSON.parse(JSON.stringify(params.readings[0])), { a: [{ x: '1' }] }, name)
  }
})

test('through the gate: a form body of one long deep name, without a token, is answered', async (t) => {
  const g = await startGraphqlGate(t, { tokens: {} })
  const answer = await send(g.url, 'POST', '/api/graphql', { 'content-type': FORM }, `${deepName()}=1;`)
  assert.equal(answer.status, 413, answer.text)
  assert.equal(answer.json().code, 'BODY_TOO_LARGE_TO_INSPECT')
  assert.equal(g.upstream.length, 0)
})
