// Finding: a JOB-TOKEN header with a token GitLab does not know, plus a chunked multipart body
// with a `token` field, killed the process: the multipart guard errored while the job was still
// being resolved, and nothing listened for its error. One request must never take down the
// others; its stream errors are its own 4xx/5xx.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send, sendChunked } from '../helpers/http.ts'

const boundary = 'crash-boundary'
const body = (token: string): Buffer[] => [
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="token"\r\n\r\n${token}\r\n`),
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n`),
  Buffer.alloc(256 * 1024, 0x61),
  Buffer.from(`\r\n--${boundary}--\r\n`)
]

for (const [name, header, field] of [
  ['an unknown job token and a token field', 'glcbt-not-a-real-job-token', 'glcbt-another-token'],
  ['an unknown job token and a field holding a PAT', 'glcbt-not-a-real-job-token', 'glpat-xxxxxxxxxxxxxxxxxxxx'],
  ['a known job token and a different token field', TOKENS.app, TOKENS.tools]
] as const) {
  test(`${name}: refused, the process keeps serving, nothing reaches the upstream`, async (t) => {
    const g = await startTestGate(t)
    const answers = await Promise.all([1, 2, 3].map(() => sendChunked(g.url, '/api/v4/projects/100/packages/pypi', {
      'job-token': header, 'content-type': `multipart/form-data; boundary=${boundary}`
    }, body(field))))
    for (const a of answers) {
      assert.ok(a.status === 401 || a.status === 403, `refused, got ${a.status} ${a.body}`)
    }
    assert.equal(g.seen.filter(r => r.url.includes('/packages/pypi')).length, 0, 'no upload completed upstream')
    // The same gate still answers.
    const after = await send(g.url, 'GET', '/api/v4/projects/100/packages', { 'job-token': TOKENS.app })
    assert.equal(after.status, 200)
  })
}
