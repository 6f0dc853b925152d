// Finding: GitLab routes that authenticate through `authenticate_with` (Helm, Debian, NuGet,
// Cargo, the Terraform module registry, Maven virtual registries) accept job tokens but are not
// on the docs page the catalog was built from, so the gate treated a job token there as one on a
// route that takes none. They are in the catalog now (catalog/sources/gitlab-source-routes.json):
// decided as GitLab's find_project! decides them, with the job token found wherever GitLab reads
// it (the last word of Authorization, Basic under any username).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { requireTool } from '../helpers/require-tool.ts'

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

// acme/lib (200): acme/platform/app (100) has a fine-grained entry with read_packages; every other
// acme job (acme/platform/web, 600) has default permissions through the acme group; other/tools
// (300) is not allowlisted.

test('Cargo and the Terraform module registry: `Authorization: Foo Bar <job token>` from a project not allowlisted is refused', async t => {
  const g = await startTestGate(t)
  for (const path of [
    '/api/v4/projects/200/packages/cargo/config.json',
    '/api/v4/projects/200/packages/cargo/se/rd/serde',
    '/api/v4/projects/200/packages/terraform/modules/net/aws',
    '/api/v4/projects/200/packages/terraform/modules/net/aws/1.2.3'
  ]) {
    const res = await send(g.url, 'GET', path, { authorization: `Foo Bar ${TOKENS.tools}` })
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'NOT_ALLOWLISTED', path)
  }
  const upload = await send(g.url, 'PUT', '/api/v4/projects/200/packages/terraform/modules/net/aws/1.2.3/file', { 'job-token': TOKENS.tools }, 'module')
  assert.equal(upload.status, 403, upload.text)
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

test('Helm and Debian: Basic under any username carries a job token', async t => {
  const g = await startTestGate(t)
  for (const [path, user] of [
    ['/api/v4/projects/200/packages/helm/stable/index.yaml', 'helm'],
    ['/api/v4/projects/200/packages/helm/stable/charts/app-1.0.0.tgz', 'anyone'],
    ['/api/v4/projects/200/packages/debian/dists/bookworm/Release', 'debian-user'],
    ['/api/v4/projects/200/packages/debian/dists/bookworm/main/binary-amd64/Packages', 'gitlab-ci-token']
  ] as const) {
    const res = await send(g.url, 'GET', path, { authorization: basic(user, TOKENS.tools) })
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'NOT_ALLOWLISTED', path)
  }
  assert.equal(g.seen.length, 0)
})

// TokenLocator's `http_basic_auth` (lib/gitlab/api_authentication/token_locator.rb) asks
// `user_name_and_password`, which decodes what follows the first word of Authorization whatever
// that word is: `has_basic_credentials?`, which compares the scheme, is never asked. A job token
// as Basic under another scheme (or Envoy's `Basic,<base64>`, which Puma makes `Basic, <base64>`
// as it joins two lines) was no Basic to the gate: forwarded as a request without a job token,
// and Helm and Debian authenticated the job.
const underOtherSchemes = (user: string): string[] => {
  const param = Buffer.from(`${user}:${TOKENS.tools}`).toString('base64')
  return [`Foo ${param}`, `Bearer ${param}`, `Basic,${param}`, `Basic, ${param}`]
}

test('ActionController\'s user_name_and_password decodes Basic credentials under any scheme', t => {
  const script = 'require "action_controller"; include ActionController::HttpAuthentication::Basic; R = Struct.new(:authorization); ARGV.each { |a| puts user_name_and_password(R.new(a)).join(" ") }'
  // What GitLab gets: Envoy's `Basic,<base64>` is the gate's view only (Puma adds the space).
  const sent = underOtherSchemes('helm').filter(a => !/^Basic,\S/.test(a))
  assert.equal(sent.length, 3)
  const probe = spawnSync('ruby', ['-e', script, ...sent], { encoding: 'utf8' })
  if (!requireTool(t, probe.error !== undefined || probe.status !== 0 ? `ruby with ActionPack (${probe.error?.message ?? probe.stderr.trim().split('\n')[0] ?? ''}); install the Debian package ruby-actionpack` : null)) return
  assert.deepEqual(probe.stdout.trim().split('\n'), sent.map(() => `helm ${TOKENS.tools}`))
})

test('Helm and Debian: Basic credentials under another scheme carry a job token, through the proxy and forward-auth', async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  for (const path of ['/api/v4/projects/200/packages/helm/stable/index.yaml', '/api/v4/projects/200/packages/debian/dists/bookworm/Release']) {
    for (const authorization of underOtherSchemes('helm')) {
      for (const base of [g.url, auth]) {
        const res = await send(base, 'GET', path, { authorization })
        // The scheme's own reading (a Bearer, a word) names another secret: refused as several.
        assert.equal(res.status, 401, `${base} ${path} ${authorization.slice(0, 8)}: ${res.text}`)
        assert.equal(res.json().code, 'CREDENTIAL_AMBIGUOUS', path)
      }
    }
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
})

// Envoy's ext_authz hands the gate repeated lines joined with ',' and GitLab the lines, which Puma
// joins with ', '. Lines `Foo,AAA` and `<base64>`: the first word ends at the comma after `AAA` to
// ActionPack, which decodes the job token; `Foo,AAA,<base64>` was one word to the gate, whose
// commas-spaced reading decoded `AAA` with the rest (garbage), and forward-auth answered 200.
const envoyJoins = (user: string): Array<{ lines: string[], envoy: string }> => {
  const param = Buffer.from(`${user}:${TOKENS.tools}`).toString('base64')
  return [['Foo,AAA', param], ['a,b,c,', param], ['Basic,x', param]].map(lines => ({ lines, envoy: lines.join(',') }))
}

test('ActionController decodes Basic after the comma that ended the first line, in Puma\'s join', t => {
  const script = 'require "action_controller"; include ActionController::HttpAuthentication::Basic; R = Struct.new(:authorization); ARGV.each { |a| puts user_name_and_password(R.new(a)).join(" ") }'
  const joined = envoyJoins('helm').map(j => j.lines.join(', '))
  const probe = spawnSync('ruby', ['-e', script, ...joined], { encoding: 'utf8' })
  if (!requireTool(t, probe.error !== undefined || probe.status !== 0 ? `ruby with ActionPack (${probe.error?.message ?? probe.stderr.trim().split('\n')[0] ?? ''}); install the Debian package ruby-actionpack` : null)) return
  assert.deepEqual(probe.stdout.trim().split('\n'), joined.map(() => `helm ${TOKENS.tools}`))
})

test('forward-auth: Envoy\'s join of lines whose first holds a comma carries the job token', async t => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_ORIGINAL: 'request-line' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  for (const path of ['/api/v4/projects/200/packages/helm/stable/index.yaml', '/api/v4/projects/200/packages/debian/dists/bookworm/Release']) {
    for (const { envoy } of envoyJoins('helm')) {
      const res = await send(auth, 'GET', path, { authorization: envoy })
      assert.equal(res.status, 401, `${path} ${envoy.slice(0, 10)}: ${res.text}`)
      assert.equal(res.json().code, 'CREDENTIAL_AMBIGUOUS', path)
    }
  }
})

test('a fine-grained entry refuses routes without policies; a default-permissions entry allows them', async t => {
  const g = await startTestGate(t)
  const routes: Array<[string, string]> = [
    ['GET', '/api/v4/projects/200/packages/helm/stable/index.yaml'],
    ['POST', '/api/v4/projects/200/packages/helm/api/stable/charts'],
    ['GET', '/api/v4/projects/200/packages/debian/pool/bookworm/a/app/1.0/app_1.0_amd64.deb'],
    ['PUT', '/api/v4/projects/200/packages/nuget'],
    ['GET', '/api/v4/projects/200/packages/nuget/metadata/App/index'],
    ['GET', '/api/v4/projects/200/packages/terraform/modules/net/aws']
  ]
  for (const [method, path] of routes) {
    const refused = await send(g.url, method, path, { authorization: basic('gitlab-ci-token', TOKENS.app) })
    assert.equal(refused.status, 403, `${method} ${path}: ${refused.text}`)
    assert.equal(refused.json().code, 'NO_POLICIES_FOR_ENDPOINT', `${method} ${path}`)
    assert.match(refused.json().message, /This action is unauthorized for CI\/CD job tokens\.$/)
  }
  assert.equal(g.seen.length, 0)
  for (const [method, path] of routes) {
    const allowed = await send(g.url, method, path, { authorization: basic('gitlab-ci-token', TOKENS.web) })
    assert.equal(allowed.status, 200, `${method} ${path}: ${allowed.text}`)
  }
  assert.deepEqual(g.seen.map(r => `${r.method} ${r.url}`), routes.map(([m, p]) => `${m} ${p}`))
})

test('Cargo routes carry the policies GitLab sets on them: read_packages reads, admin_packages uploads', async t => {
  const g = await startTestGate(t)
  const read = await send(g.url, 'GET', '/api/v4/projects/200/packages/cargo/serde/1.0.0/download', { authorization: `Bearer ${TOKENS.app}` })
  assert.equal(read.status, 200, read.text)
  const upload = await send(g.url, 'PUT', '/api/v4/projects/200/packages/cargo/api/v1/crates/new/authorize', { authorization: `Bearer ${TOKENS.app}` })
  assert.equal(upload.status, 403, upload.text)
  assert.equal(upload.json().code, 'MISSING_POLICIES')
  assert.deepEqual(g.seen.map(r => r.url), ['/api/v4/projects/200/packages/cargo/serde/1.0.0/download'])
})

test('routes that name no project (Terraform module namespaces, Maven virtual registries, NuGet groups) are left to GitLab, or refused when told to', async t => {
  const paths = [
    '/api/v4/packages/terraform/modules/v1/acme/net/aws/versions',
    '/api/v4/virtual_registries/packages/maven/3/com/acme/app/1.0/app-1.0.jar',
    '/api/v4/groups/10/-/packages/nuget/query'
  ]
  const deferred = await startTestGate(t)
  for (const path of paths) {
    const res = await send(deferred.url, 'GET', path, { authorization: `Bearer ${TOKENS.tools}` })
    assert.equal(res.status, 200, `${path}: ${res.text}`)
  }
  assert.equal(deferred.seen.length, paths.length, 'GitLab decides these')
  const strict = await startTestGate(t, { GATE_UNRESOLVED_PROJECT: 'deny' })
  for (const path of paths) {
    const res = await send(strict.url, 'GET', path, { authorization: `Bearer ${TOKENS.tools}` })
    assert.equal(res.status, 403, `${path}: ${res.text}`)
    assert.equal(res.json().code, 'PROJECT_NOT_IN_URL', path)
  }
  assert.equal(strict.seen.length, 0)
})
