// Finding: a path outside the API root that holds `/api/v4` is read as an API path after each of
// those segments (any prefix may be GitLab's root, if it is not the gate's), each matched against
// the catalog for a package write or delete, a POST under each of the nine methods its override
// may give it, so that the users' package rules hold there. Each match walks the rest of the path:
// an 8 KB path of 170 `/api/v4/projects/1/packages/x.a.b.c.d.e.f.g`, POSTed with no token at all,
// cost the gate 100 ms of CPU, and a client sending them back to back held it. A path outside the
// root holding `/api/v4` more than 16 times is refused, 403 API_PATH_OUTSIDE_ROOT, before any is
// matched: no GitLab root holds one, and a repository file's path in the web UI a few.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_API_PATHS_OUTSIDE_ROOT } from '../../src/gate/pipeline.ts'
import { startTestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

test('a path outside the root holding /api/v4 more than 16 times is refused before its API paths are matched', async t => {
  const g = await startTestGate(t)
  assert.equal(MAX_API_PATHS_OUTSIDE_ROOT, 16)
  const path = (n: number, tail = '/x.a.b.c.d.e.f.g'): string => '/x' + '/api/v4/users/1'.repeat(n) + tail
  // Up to 16: each read, and one that names no package write is forwarded.
  for (const method of ['GET', 'POST', 'PUT']) {
    const read = await send(g.url, method, path(16), {}, '')
    assert.equal(read.status, 200, `${method}: ${read.text}`)
  }
  // A package write after one of them is refused, as before.
  const write = await send(g.url, 'PUT', path(15, '/api/v4/projects/1/packages/generic/a/1/f'), {}, 'x')
  assert.equal(write.status, 403, write.text)
  assert.equal(write.json().code, 'API_PATH_OUTSIDE_ROOT')
  // More: refused whatever follows them, with or without a credential.
  for (const [method, n, headers] of [['POST', 17, {}], ['POST', 170, {}], ['GET', 300, {}], ['POST', 17, { 'private-token': 'glpat-someone' }]] as const) {
    const answer = await send(g.url, method, path(n), headers, '')
    assert.equal(answer.status, 403, `${method} ${n}: ${answer.text}`)
    assert.equal(answer.json().code, 'API_PATH_OUTSIDE_ROOT')
    assert.match(answer.json().message, /holds \/api\/v4 more than 16 times/)
  }
  assert.equal(g.seen.length, 3, 'only the three reads of 16 were forwarded')
})
