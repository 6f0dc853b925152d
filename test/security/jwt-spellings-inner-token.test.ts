// Conan's Bearer JWT and the Terraform module registry's `token=` JWT carry the caller's job token
// in a claim (lib/gitlab/conan_token.rb; Gitlab::TerraformRegistryToken), and GitLab reads them
// with ruby-jwt, which splits a token with Ruby's `split('.')`: trailing empty parts are dropped,
// so `<header>.<payload>.<signature>.` is the same three parts, the same signing input, the same
// job. The gate split with JavaScript's, found four parts, read no job token in the JWT and
// forwarded it as another credential: the job of other/tools read acme/lib's Conan packages,
// which acme/lib's allowlist does not open to it, with the JWT GitLab's own Conan login handed it
// and a dot after it. A JWT is read as ruby-jwt reads it now: its first three parts.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { requireTool } from '../helpers/require-tool.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

/** A JWT as GitLab encodes these (HS256); the gate reads its claims, GitLab checks its signature. */
function jwt (claims: Record<string, unknown>): string {
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  return `${part({ typ: 'JWT', alg: 'HS256' })}.${part({ jti: 'f00', iat: now, nbf: now - 5, exp: now + 300, ...claims })}.${Buffer.from('signature').toString('base64url')}`
}

// Spellings ruby-jwt splits into the same three parts.
const SPELLINGS = (token: string): string[] => [`${token}.`, `${token}...`]

function rubyMissing (): string | null {
  try {
    execFileSync('ruby', ['-e', '0'])
    return null
  } catch {
    return 'ruby (the split ruby-jwt reads a token with)'
  }
}

test('Ruby splits these spellings into the clean JWT\'s three parts, as ruby-jwt reads them', t => {
  if (!requireTool(t, rubyMissing())) return
  const token = jwt({ access_token: TOKENS.tools, user_id: 8 })
  for (const spelling of SPELLINGS(token)) {
    // JWT::Decode: `@segments = jwt.split('.')`, three of them, `signing_input` the first two.
    const parts = JSON.parse(execFileSync('ruby', ['-rjson', '-e', 'puts JSON.generate(STDIN.read.split("."))'], { input: spelling }).toString()) as string[]
    assert.deepEqual(parts, token.split('.'), spelling.slice(-4))
  }
})

// acme/lib (200) does not list other/tools (300).
const CONAN = '/api/v4/projects/200/packages/conan/v1/conans/hello/1.0/acme+lib/stable/download_urls'

test('Conan: a JWT with trailing dots still carries its job token', async t => {
  const g = await startTestGate(t)
  const conan = jwt({ access_token: TOKENS.tools, user_id: 8 })
  for (const spelling of [conan, ...SPELLINGS(conan)]) {
    const res = await send(g.url, 'GET', CONAN, { authorization: `Bearer ${spelling}` })
    assert.equal(res.status, 403, res.text)
    assert.equal(res.json().code, 'NOT_ALLOWLISTED', spelling.slice(-3))
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

async function keepModulesFromJobs (g: TestGate): Promise<void> {
  const { version: _version, ...doc } = (await g.store.get(200))!
  await g.store.put({ ...doc, packageRules: { terraform_module: { read: false, write: 'maintainer' } } })
}

test('Terraform module registry: a `token` JWT with trailing dots still carries its job token', async t => {
  const g = await startTestGate(t)
  await keepModulesFromJobs(g)
  const file = '/api/v4/packages/terraform/modules/v1/acme/lib/aws/1.0.0/file'
  for (const claim of ['token', 'access_token']) {
    for (const spelling of SPELLINGS(jwt({ [claim]: TOKENS.web, user_id: 7 }))) {
      const res = await send(g.url, 'GET', `${file}?token=${spelling}&archive=tgz`, {})
      assert.equal(res.status, 403, `${claim}: ${res.text}`)
      assert.equal(res.json().code, 'PACKAGE_READ_DISABLED', claim)
    }
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})
