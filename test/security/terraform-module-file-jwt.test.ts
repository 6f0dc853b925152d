// The Terraform module registry's `file` route (`/packages/terraform/modules/v1/:module_namespace/
// :module_name/:module_system/*module_version/file`) authenticates with a JWT in its `token` query
// parameter, and with nothing else (lib/api/terraform/modules/v1/namespace_packages.rb:
// `job_token_from_jwt ... sent_through(:token_param)`). The `download` route hands that JWT out in
// `X-Terraform-Get`; it is GitLab's HMAC JWT (Gitlab::TerraformRegistryToken, five minutes) whose
// `token` claim (`access_token` in newer versions) is the caller's token itself, a job's token for a
// job (token_resolver.rb, resolve_job_token_from_jwt), and it names no module or namespace. The gate
// took the JWT for a credential of no job, so `file?token=<JWT>` was a request without a job token:
// a job given a JWT by any download it was allowed (a namespace whose projects keep nothing from
// job tokens) read, with it, the modules of any other namespace, past `terraform_module.read: false`
// of every project there, which the same route refuses to the job token sent plainly. The job token
// in such a JWT is now read as the request's job token there, as the JWT Conan hands out is.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

const FILE = (namespace: string): string => `/api/v4/packages/terraform/modules/v1/${namespace}/lib/aws/1.0.0/file`

/** A JWT as GitLab encodes it (HS256); the gate reads its claims, GitLab checks its signature. */
function jwt (claims: Record<string, unknown>): string {
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  return `${part({ typ: 'JWT', alg: 'HS256' })}.${part({ jti: 'f00', iat: now, nbf: now - 5, exp: now + 300, ...claims })}.${Buffer.from('signature').toString('base64url')}`
}

async function keepModulesFromJobs (g: TestGate): Promise<void> {
  // acme/lib (200), in group acme, keeps its Terraform modules from job tokens.
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: { terraform_module: { read: false, write: 'maintainer' } } })
}

const lastDecision = (g: TestGate): Record<string, unknown> | undefined => g.logs.filter(l => l.msg === 'decision').at(-1)

test('a job token inside the Terraform module registry\'s JWT is the request\'s job token', async t => {
  const g = await startTestGate(t)
  await keepModulesFromJobs(g)
  // The job token sent plainly is refused there, as before.
  const plain = await send(g.url, 'GET', FILE('acme'), { 'job-token': TOKENS.web })
  assert.equal(plain.json().code, 'PACKAGE_READ_DISABLED', plain.text)

  // Wrapped in the JWT, under either claim name GitLab has used, and sent as the client sends it.
  for (const claim of ['token', 'access_token']) {
    for (const token of [TOKENS.web, TOKENS.lib]) {
      const path = `${FILE('acme')}?token=${jwt({ [claim]: token, user_id: 7 })}&archive=tgz`
      const res = await send(g.url, 'GET', path, {})
      assert.equal(res.status, 403, `${claim}: ${res.text}`)
      assert.equal(res.json().code, 'PACKAGE_READ_DISABLED', claim)
      assert.equal(lastDecision(g)?.reason, 'PACKAGE_READ_DISABLED')
    }
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')

  // A finished job's token in the JWT is refused as the token is.
  const finished = await send(g.url, 'GET', `${FILE('other')}?token=${jwt({ token: TOKENS.appFinished })}`, {})
  assert.equal(finished.status, 401, finished.text)

  // A namespace whose projects keep nothing: the job's read goes to GitLab, the JWT as sent.
  const open = `${FILE('other')}?token=${jwt({ token: TOKENS.web })}&archive=tgz`
  const allowed = await send(g.url, 'GET', open, {})
  assert.equal(allowed.status, 200, allowed.text)
  assert.equal(g.seen.at(-1)!.url, open)
  assert.equal(lastDecision(g)?.reason, 'PROJECT_NOT_IN_URL')
  assert.equal(lastDecision(g)?.decision, 'deferred')

  // A JWT of a user's token (a personal access token's id, a deploy token) holds no job token.
  for (const claims of [{ token: 41, user_id: 7 }, { token: 'gldt-deploytoken0000' }]) {
    const path = `${FILE('acme')}?token=${jwt(claims)}`
    const res = await send(g.url, 'GET', path, {})
    assert.equal(res.status, 200, res.text)
    assert.equal(lastDecision(g)?.decision, 'no_job_token')
  }
})

test('beside the same job token sent plainly the JWT is one credential; beside another, two', async t => {
  const g = await startTestGate(t)
  await keepModulesFromJobs(g)
  const path = `${FILE('other')}?token=${jwt({ token: TOKENS.web })}`
  const same = await send(g.url, 'GET', path, { authorization: `Bearer ${TOKENS.web}` })
  assert.equal(same.status, 200, same.text)
  const other = await send(g.url, 'GET', path, { authorization: `Bearer ${TOKENS.lib}` })
  assert.equal(other.status, 401, other.text)
  assert.equal(other.json().code, 'CREDENTIAL_AMBIGUOUS')
})
