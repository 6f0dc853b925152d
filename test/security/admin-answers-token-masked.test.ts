// Finding: the configuration API's answers quote the client's text where it names something the
// gate does not know (a policy, a package format or action, a field, the target path of an
// allowlist mutation), and quoted a token pasted there whole: `job_token_policies:
// ["$CI_JOB_TOKEN"]`, a PAT given as `targetProjectPath`, a JWT as a package format. The answer
// is what a CI job's log or a script's output prints. A token-shaped word of quoted text is now
// written `[token]`, as the log writes a path's (recognised before the text is cut short, so a
// JSON Web Token's dots are seen).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMIN, adminGate, USERS } from '../helpers/admin-gate.ts'
import { send } from '../helpers/http.ts'
import { TOKENS } from '../helpers/gate.ts'

const PAT = 'glpat-pastedintoafield0001'
const JWT = `${Buffer.from('{"alg":"RS256","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'project_path:acme/app', pad: 'x'.repeat(120) })).toString('base64url')}.c2lnbmF0dXJlc2lnbmF0dXJl`
const json = (token: string): Record<string, string> => ({ 'private-token': token, 'content-type': 'application/json' })

test('a token pasted into a field the configuration API names is answered [token]', async t => {
  const g = await adminGate(t)
  const answers: string[] = []
  const ask = async (path: string, method: string, headers: Record<string, string>, body: unknown, status: number): Promise<void> => {
    const res = await send(g.url, method, path, headers, JSON.stringify(body))
    assert.equal(res.status, status, res.text)
    answers.push(res.text)
  }
  await ask('/api/v4/projects/200/job_token_scope/allowlist', 'POST', json(USERS.maintainer), { target_project_id: 300, default_permissions: false, job_token_policies: [TOKENS.app, `acme-${JWT}`] }, 400)
  await ask('/api/v4/projects/200/job_token_permissions', 'PATCH', json(ADMIN), { [PAT]: true }, 400)
  await ask('/api/v4/projects/200/job_token_permissions', 'PATCH', json(ADMIN), { package_registry: { [JWT]: { write: 'maintainer' }, npm: { [PAT]: 'maintainer' } } }, 400)
  await ask('/api/v4/projects/200/job_token_scope/allowlist', 'POST', json(ADMIN), { target_project_id: 300, [TOKENS.lib]: 1 }, 400)
  await ask('/api/graphql', 'POST', json(USERS.maintainer), { query: `mutation { ciJobTokenScopeAddProject(input: {projectPath: "acme/lib", targetProjectPath: "acme/${PAT}"}) { errors } }` }, 200)
  await ask('/api/graphql', 'POST', json(USERS.maintainer), { query: 'mutation($p: [CiJobTokenScopePolicies!]) { ciJobTokenScopeAddGroupOrProject(input: {projectPath: "acme/lib", targetPath: "other/tools", defaultPermissions: false, jobTokenPolicies: $p}) { errors } }', variables: { p: [JWT] } }, 200)
  const text = answers.join('\n')
  for (const secret of [PAT, TOKENS.app, TOKENS.lib, 'pastedintoafield', 'eyJ']) assert.ok(!text.includes(secret), `an answer holds ${secret}: ${text}`)
  assert.match(answers[0]!, /\\"\[token\]\\" is not a known job token policy/)
  assert.match(answers[4]!, /targetProjectPath \\"acme\/\[token\]\\" is not a project the caller can see/)
  // Text of no token's shape is quoted as before.
  await ask('/api/v4/projects/200/job_token_permissions', 'PATCH', json(ADMIN), { package_registry: { nuggets: { write: 'maintainer' } } }, 400)
  assert.match(answers.at(-1)!, /\\"nuggets\\" is not a known package format/)
})
