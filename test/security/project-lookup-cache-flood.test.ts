// Regression: the projects that group and instance routes' lookups found shared one list with the
// answers "no project here", and with the lookups in flight (lru-cache's fetch() holds a place for
// each), bounded by the bytes of their keys: the client's URL parameters.
//
// Any client can have names looked up: the users' package rules find the project of a Conan
// write through the instance API before any credential is checked, so a DELETE with any Cookie
// and a made-up package username of 4 KiB was one GitLab call and 4 KiB of that list. A thousand
// of them pushed out every project jobs' lookups had found, and each job's next request asked
// GitLab again (a Maven group's lookup reads up to hundreds of pages): the cache stopped holding
// off the calls it exists to spare GitLab.
//
// Now the projects found are kept apart from the other answers, and the loads in flight apart from
// both, as the project facts and the grant cache keep them.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'

const REAL = '/api/v4/packages/conan/v1/conans/pkg/1.0/acme+lib/stable'
/** A made-up package username as long as a path segment may be (4,096 characters). */
const madeUp = (i: number): string => `nosuch+${String(i).padStart(4089, 'x')}`

test('made-up names looked up by the thousand do not push out the projects jobs use', async t => {
  const g = await startTestGate(t)
  const read = async (): Promise<number> => {
    const res = await fetch(g.url + REAL, { headers: { 'job-token': TOKENS.app } })
    await res.arrayBuffer()
    return res.status
  }
  assert.equal(await read(), 200)
  const found = g.gitlab.calls.project
  // 1,040 Conan deletes with nothing but a cookie, 20 at once: over 4 MiB of keys.
  for (let i = 0; i < 1040; i += 20) {
    await Promise.all(Array.from({ length: 20 }, async (_, j) => {
      const res = await fetch(`${g.url}/api/v4/packages/conan/v1/conans/pkg/1.0/${madeUp(i + j)}/stable`, { method: 'DELETE', headers: { cookie: 'theme=dark' } })
      await res.arrayBuffer()
      assert.equal(res.status, 200, 'no project there: left to GitLab')
    }))
  }
  assert.equal(g.gitlab.calls.project, found + 1040, 'each made-up name asked once')
  assert.equal(await read(), 200)
  assert.equal(g.gitlab.calls.project, found + 1040, 'the job\'s project still cached')
  // The answers "no project" are cached too, in a list of their own, for reads (a write asks
  // again: test/security/project-not-found-cached-write.test.ts).
  const res = await fetch(`${g.url}/api/v4/packages/conan/v1/conans/pkg/1.0/${madeUp(1039)}/stable`, { headers: { 'job-token': TOKENS.app } })
  await res.arrayBuffer()
  assert.equal(res.status, 200, 'no project there: left to GitLab')
  assert.equal(g.gitlab.calls.project, found + 1040)
})
