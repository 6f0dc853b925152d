// Finding: a job token's 403 names the accessed project as GitLab does ("not allowed from app to
// <project>"), and a project the gate does not know is named as the request's path names it: a
// token pasted as the project's path (`/projects/acme%2F<JWT>/...`, a variable in the wrong
// place) was answered whole, where the decision log writes that segment `[token]`. The answer is
// what the job's log prints. It is answered `[token]` now, as logged.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const JWT = `${Buffer.from('{"alg":"RS256","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"sub":"project_path:acme/app"}').toString('base64url')}.c2lnbmF0dXJlc2lnbmF0dXJl`

test('a token given as the accessed project\'s path is answered [token] in the 403', async t => {
  const g = await startTestGate(t, { GATE_LOG_RAW_PATH: 'true' })
  const answers: string[] = []
  for (const path of [`/api/v4/projects/acme%2F${JWT}/packages`, '/api/v4/projects/acme%2Fglpat-pastedasaproject01/packages', `/api/v4/projects/other%2F${TOKENS.lib}/releases`]) {
    const res = await send(g.url, 'GET', path, { 'job-token': TOKENS.app })
    assert.equal(res.status, 403, res.text)
    assert.equal(res.json().code, 'UNKNOWN_PROJECT')
    assert.equal(res.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from app to [token].')
    answers.push(res.text)
  }
  const text = [...answers, ...g.logs.map(l => JSON.stringify(l))].join('\n')
  assert.ok(!/eyJ|glpat-|glcbt-/.test(text), text)
  // A project named by a path of no token's shape is named as before.
  const res = await send(g.url, 'GET', '/api/v4/projects/acme%2Fnowhere/packages', { 'job-token': TOKENS.app })
  assert.equal(res.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from app to nowhere.')
})
