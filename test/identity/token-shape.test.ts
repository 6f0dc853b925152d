// The one predicate for "could GitLab read this secret as a CI/CD job token", and the strip of
// its prefix before the JWT: `glcbt-...` and `<instance prefix>-glcbt-...` (docs/identity.md).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isBareJobTokenJwt, isJobTokenShape, isRecognisedInstancePrefix, jobTokenBody } from '../../src/identity/token-shape.ts'
import { jobTokenJwt } from '../../src/identity/jwt.ts'
import { loadConfig } from '../../src/config.ts'

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln'

test('job token shapes: plain, and any instance prefix GitLab could set', () => {
  const yes = [
    'glcbt-64_abc',
    `glcbt-${JWT}`,
    `acme-glcbt-${JWT}`,
    'ACME_corp-2-glcbt-64_abc',
    'a-glcbt-x',
    'my-glcbt-glcbt-x',
    `${'p'.repeat(64)}-glcbt-x`,
    'a.b:c@d/e+f=g-glcbt-x',
    // Newer GitLab joins the instance prefix without a hyphen.
    'acmeglcbt-64_abc',
    `acmeglcbt-${JWT}`,
    '-glcbt-x',
    // Characters beyond the personal access token prefix's alphabet: GitLab's validation of the
    // instance prefix is not known, and one not recognised was forwarded unchecked.
    'ac!me-glcbt-x',
    'acme~-glcbt-x',
    '[acme]-glcbt-x',
    'ac\u00e4me-glcbt-x',
    'ac\u00c3\u00a4me-glcbt-x'
  ]
  for (const s of yes) assert.equal(isJobTokenShape(s), true, s)
  const no = [
    '',
    'glpat-abcdefghijklmnopqrst',
    'acme-glpat-abcdefghijklmnopqrst',
    'GLCBT-64_abc',
    'glcbt_64_abc',
    'acme-glcbt',
    'acme glcbt-x',
    'ac me-glcbt-x',
    'ac\tme-glcbt-x',
    'ac\u0000me-glcbt-x',
    'ac\u007fme-glcbt-x',
    `${'p'.repeat(65)}-glcbt-x`,
    'oauth-access-token'
  ]
  for (const s of no) assert.equal(isJobTokenShape(s), false, JSON.stringify(s))
})

test('a job token JWT without its prefix: a JWT whose subject is a CI build', () => {
  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
  const jwt = (payload: unknown): string => `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(payload)}.c2ln`
  const bare = jwt({ sub: 'gid://gitlab/Ci::Build/42', aud: 'gitlab-authz-token' })
  assert.equal(isJobTokenShape(bare), true)
  assert.equal(isBareJobTokenJwt(bare), true)
  assert.equal(jobTokenJwt(bare), bare, 'checked locally like a prefixed one')
  assert.equal(jobTokenBody(bare), null, 'no prefix to strip')
  // Spellings ruby-jwt reads as the same token: trailing dots (Ruby's split drops empty parts), a
  // signature with characters Base64.decode64 skips. Recognised, then refused as malformed.
  for (const spelling of [`${bare}.`, `${bare}...`, `${bare}!`, `${bare.slice(0, -2)}*${bare.slice(-2)}`]) {
    assert.equal(isJobTokenShape(spelling), true, spelling)
    assert.throws(() => jobTokenJwt(spelling), /well-formed JWT/)
  }
  for (const other of [
    jwt({ sub: 'project_path:acme/app:ref_type:branch:ref:main' }),
    jwt({ access_token: 'glpat-x', user_id: 1 }),
    jwt({ sub: 42 }),
    jwt(null),
    jwt([]),
    `x${jwt({ sub: 'gid://gitlab/Ci::Build/42' })}`,
    `.${jwt({ sub: 'gid://gitlab/Ci::Build/42' })}`,
    jwt({ sub: 'gid://gitlab/Ci::Build/42' }).replace(/\.c2ln$/, ''),
    'eyJnot a jwt'
  ]) assert.equal(isJobTokenShape(other), false, other.slice(0, 80))
})

test('the part after the prefix, as GitLab strips it before decoding', () => {
  assert.equal(jobTokenBody(`glcbt-${JWT}`), JWT)
  assert.equal(jobTokenBody(`acme-glcbt-${JWT}`), JWT)
  assert.equal(jobTokenBody(`my-glcbt-glcbt-${JWT}`), JWT, 'a prefix that contains -glcbt is whole')
  assert.equal(jobTokenBody(`acmeglcbt-${JWT}`), JWT, 'a prefix joined without a hyphen')
  assert.equal(jobTokenJwt(`acmeglcbt-${JWT}`), JWT)
  assert.equal(jobTokenBody('glcbt-64_abc'), '64_abc')
  assert.equal(jobTokenBody('glpat-x'), null)
  assert.equal(jobTokenJwt(`acme-glcbt-${JWT}`), JWT)
  assert.equal(jobTokenJwt('acme-glcbt-64_abc'), null, 'no dot: an opaque token, left to GitLab')
  assert.throws(() => jobTokenJwt('acme-glcbt-a.b!.c'), /well-formed JWT/)
})

test('GATE_INSTANCE_TOKEN_PREFIX: empty or a prefix the shapes recognise; anything else stops the start', () => {
  const base = { GATE_UPSTREAM_URL: 'http://gitlab:8181' }
  assert.equal(loadConfig(base).instanceTokenPrefix, undefined)
  assert.equal(loadConfig({ ...base, GATE_INSTANCE_TOKEN_PREFIX: 'acme' }).instanceTokenPrefix, 'acme')
  assert.equal(loadConfig({ ...base, GATE_INSTANCE_TOKEN_PREFIX: '' }).instanceTokenPrefix, '')
  for (const bad of ['ac me', 'p'.repeat(65), 'ac\tme', 'acme\u0000']) {
    assert.equal(isRecognisedInstancePrefix(bad), false)
    assert.throws(() => loadConfig({ ...base, GATE_INSTANCE_TOKEN_PREFIX: bad }), /GATE_INSTANCE_TOKEN_PREFIX must be/)
  }
  // Every prefix the configuration accepts, its tokens are recognised.
  for (const good of ['acme', 'a', 'x'.repeat(64), 'my-glcbt', 'a.b:c@d/e+f=g_h', 'acme!', 'acme~', 'ac\u00e4me']) {
    assert.equal(isRecognisedInstancePrefix(good), true)
    assert.equal(isJobTokenShape(`${good}-glcbt-${JWT}`), true, good)
    assert.equal(jobTokenBody(`${good}-glcbt-${JWT}`), JWT, good)
  }
})
