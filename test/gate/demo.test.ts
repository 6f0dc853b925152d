import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startDemo } from '../../scripts/demo.ts'
import { send } from '../helpers/http.ts'

test('npm run demo: every printed curl command answers what it says', async (t) => {
  const demo = await startDemo({ listen: '127.0.0.1:0', quiet: true })
  t.after(() => demo.close())
  assert.equal(demo.commands.length, 4)
  for (const command of demo.commands) {
    const m = /^curl -i(?: -X (\w+))? -H 'JOB-TOKEN: ([^']+)' (http:\/\/[^/]+)(\/\S+)$/.exec(command.curl)
    assert.ok(m, `unexpected command shape: ${command.curl}`)
    const res = await send(m[3]!, m[1] ?? 'GET', m[4]!, { 'job-token': m[2]! })
    assert.equal(res.status, command.expect, `${command.title}: ${res.text}`)
    if (command.expect === 403) assert.match(res.json().message, /admin_packages|not allowed from tools to lib/)
  }
  // The allowed read by the project's full path, as a user may try it: GitLab names the project.
  const byPath = await send(demo.url, 'GET', '/api/v4/projects/acme%2Flib/packages', { 'job-token': demo.commands[0]!.curl.match(/JOB-TOKEN: ([^']+)/)![1]! })
  assert.equal(byPath.status, 200, byPath.text)
})
