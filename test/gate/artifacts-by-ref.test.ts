// Job artifacts by ref, with a branch name as a job writes it: `jobs/artifacts/feature/x/download`.
// GitLab's routes by ref take a ref with a raw '/' (`ref_name: /.+/`), but the catalog's
// `:ref_name` is one segment: such a path matched no route, the job token was stripped, and the
// job could not download even its own project's artifacts. The gate now routes it as GitLab does,
// and decides it: self access and the allowlist as for any read_jobs route.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const CASES: Array<{ name: string, token: string, target: string, status: number, reason: string }> = [
  { name: 'the job\'s own project (self access)', token: TOKENS.lib, target: '/api/v4/projects/200/jobs/artifacts/feature/x/download?job=build', status: 200, reason: 'SELF_ACCESS' },
  { name: 'by path, a file of the archive', token: TOKENS.lib, target: '/api/v4/projects/acme%2Flib/jobs/artifacts/release/1.x/raw/dist/app.js?job=build', status: 200, reason: 'SELF_ACCESS' },
  { name: 'a project whose group entry has default permissions', token: TOKENS.web, target: '/api/v4/projects/200/jobs/artifacts/feature/x/download?job=build', status: 200, reason: 'DEFAULT_PERMISSIONS' },
  { name: 'a fine-grained entry without read_jobs', token: TOKENS.app, target: '/api/v4/projects/200/jobs/artifacts/feature/x/download?job=build', status: 403, reason: 'MISSING_POLICIES' },
  { name: 'a project not on the allowlist', token: TOKENS.tools, target: '/api/v4/projects/200/jobs/artifacts/feature/x/raw/secret.txt?job=build', status: 403, reason: 'NOT_ALLOWLISTED' }
]

test('artifacts by a ref with a raw "/" are decided with the job token, not forwarded without it', async t => {
  const g = await startTestGate(t)
  for (const c of CASES) {
    await t.test(c.name, async () => {
      const seen = g.seen.length
      const logs = g.logs.length
      const res = await send(g.url, 'GET', c.target, { 'job-token': c.token })
      assert.equal(res.status, c.status, res.text)
      const decision = g.logs.slice(logs).find(l => l.msg === 'decision')
      assert.equal(decision?.reason, c.reason)
      if (c.status === 200) {
        assert.equal(g.seen.length, seen + 1)
        const forwarded = g.seen.at(-1)!
        assert.equal(forwarded.url, c.target, 'the path as sent')
        assert.equal(forwarded.headers['job-token'], c.token, 'the job token reaches GitLab')
      } else {
        assert.equal(g.seen.length, seen, 'nothing forwarded')
      }
    })
  }
})
