// Regression: the gate's 403 bodies are GitLab's (lib/api/helpers.rb: handle_job_token_failure!,
// job_token_policies_unauthorized_message, forbidden!): both start with "403 Forbidden - " and
// name projects by their short path (`project.path`), never `project #<id>` or a full path; the
// stable `code` and `request_id` stand beside `message`. Through real sockets against the fake
// GitLab (docs/gitlab-rules.md, "The 403 messages").

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const job = (token: string): Record<string, string> => ({ 'job-token': token, 'x-request-id': 'req-403' })

test('GitLab\'s 403 messages, word for word', async (t) => {
  const g = await startTestGate(t)
  const cases = [
    {
      name: 'not allowlisted: both projects by short path',
      method: 'GET', path: '/api/v4/projects/200/packages', token: TOKENS.tools, code: 'NOT_ALLOWLISTED',
      message: '403 Forbidden - Authentication by CI/CD job token not allowed from tools to lib.'
    },
    {
      name: 'not allowlisted, the project named by its full path in the URL',
      method: 'GET', path: '/api/v4/projects/acme%2Flib/packages', token: TOKENS.tools, code: 'NOT_ALLOWLISTED',
      message: '403 Forbidden - Authentication by CI/CD job token not allowed from tools to lib.'
    },
    {
      name: 'a job project in a subgroup is named by its short path too',
      method: 'GET', path: '/api/v4/projects/300/packages', token: TOKENS.app, code: 'NOT_ALLOWLISTED',
      message: '403 Forbidden - Authentication by CI/CD job token not allowed from app to tools.'
    },
    {
      name: 'one policy missing',
      method: 'PUT', path: '/api/v4/projects/200/packages/npm/foo', token: TOKENS.app, code: 'MISSING_POLICIES',
      message: '403 Forbidden - Insufficient permissions to access this resource in project lib. The following token permission is required: admin_packages.'
    },
    {
      name: 'two policies: every one the route needs, joined as Rails does',
      method: 'POST', path: '/api/v4/projects/200/deployments', token: TOKENS.app, code: 'MISSING_POLICIES',
      message: '403 Forbidden - Insufficient permissions to access this resource in project lib. The following token permissions are required: admin_deployments and admin_environments.'
    },
    {
      name: 'a project the store does not know, named by the path in the URL',
      method: 'GET', path: '/api/v4/projects/nobody%2Fhere/packages', token: TOKENS.app, code: 'UNKNOWN_PROJECT',
      message: '403 Forbidden - Authentication by CI/CD job token not allowed from app to here.'
    }
  ]
  for (const c of cases) {
    await t.test(c.name, async () => {
      const res = await send(g.url, c.method, c.path, job(c.token))
      assert.equal(res.status, 403, res.text)
      const body = res.json()
      // npm routes also say the message as `error` (npm prints nothing else of a body).
      const npm = c.path.includes('/packages/npm/')
      assert.deepEqual(Object.keys(body).sort(), npm ? ['code', 'error', 'message', 'request_id'] : ['code', 'message', 'request_id'])
      if (npm) assert.equal(body.error, body.message)
      assert.equal(body.message, c.message)
      assert.equal(body.code, c.code)
      assert.equal(body.request_id, 'req-403')
      assert.doesNotMatch(body.message, /#\d|acme\/|other\//, 'no id, no full path')
    })
  }
})

test('an unknown project id is named by its short path from GitLab', async (t) => {
  const g = await startTestGate(t)
  g.gitlab.projects.set(900, { id: 900, pathWithNamespace: 'far/away/place', namespace: { id: 90, kind: 'group', fullPath: 'far/away', parentId: null } })
  const res = await send(g.url, 'GET', '/api/v4/projects/900/packages', job(TOKENS.app))
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'UNKNOWN_PROJECT')
  assert.equal(res.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from app to place.')
})

test('a full path the store does not know is found in GitLab and decided by its id, named by its current path', async (t) => {
  const g = await startTestGate(t)
  // other/tools (300) was renamed in GitLab; the store still knows its old path.
  const tools = g.gitlab.projects.get(300)!
  g.gitlab.projects.set(300, { ...tools, pathWithNamespace: 'other/tools-renamed' })
  const res = await send(g.url, 'GET', '/api/v4/projects/other%2Ftools-renamed/packages', job(TOKENS.app))
  assert.equal(res.status, 403)
  assert.equal(res.json().code, 'NOT_ALLOWLISTED', 'the store\'s grants for project 300 decided')
  assert.equal(res.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from app to tools-renamed.')
  // The job's own project under a path the store does not know is self access.
  const own = g.gitlab.projects.get(100)!
  g.gitlab.projects.set(100, { ...own, pathWithNamespace: 'acme/platform/app-next' })
  const self = await send(g.url, 'GET', '/api/v4/projects/acme%2Fplatform%2Fapp-next/packages', job(TOKENS.app))
  assert.equal(self.status, 200, self.text)
  assert.equal(g.logs.filter(l => l.msg === 'decision').at(-1)?.reason, 'SELF_ACCESS')
})
