// Finding: with GitLab's `instance_token_prefix` set, job tokens read `<prefix>-glcbt-...`
// (lib/ci/job_token/jwt.rb, lib/authn/token_field/prefix_helper.rb). The gate recognised job
// tokens in the places a credential may or may not be one (Bearer, any word of Authorization,
// access_token=, bearer_token=, token=, Basic under another user, body fields) only by a leading
// `glcbt-`, so a prefixed token there was "no job token" and forwarded unchecked, while GitLab
// authenticated it as the job. Also: the prefix the gate assumes is said once at start.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createGitlabClient } from '../../src/gitlab/client.ts'
import { announceInstanceTokenPrefix } from '../../src/identity/instance-prefix.ts'
import { eventually } from '../helpers/eventually.ts'
import { startFakeGitlab, type FakeGitlab } from '../helpers/fake-gitlab.ts'
import { startTestGate, TOKENS, type TestGate } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

/** A job of other/tools (300), which acme/lib (200) does not allowlist; and one of acme/platform/app (100), which it does. */
const TOOLS = 'acme-glcbt-64_toolsjobrunning00000000'
const APP = 'acme-glcbt-64_appjobrunning0000000000'

async function prefixedGate (t: Parameters<typeof startTestGate>[0], env: Record<string, string> = {}): Promise<TestGate> {
  const g = await startTestGate(t, env)
  g.gitlab.jobs.set(TOOLS, { ...g.gitlab.jobs.get(TOKENS.tools)!, id: 13 })
  g.gitlab.jobs.set(APP, { ...g.gitlab.jobs.get(TOKENS.app)!, id: 11 })
  return g
}

const basic = (user: string, password: string): string => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64')

function multipart (fields: Record<string, string>): { headers: Record<string, string>, body: string } {
  const b = 'prefix-boundary'
  const parts = Object.entries(fields).map(([name, value]) => `--${b}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
  return { headers: { 'content-type': `multipart/form-data; boundary=${b}` }, body: parts.join('') + `--${b}--\r\n` }
}

const PACKAGES = '/api/v4/projects/200/packages'
const PYPI_UPLOAD = '/api/v4/projects/200/packages/pypi'
const upload = multipart({ name: 'pkg', version: '1.0', token: TOOLS })

type Case = readonly [string, string, string, Record<string, string>, string?]

/** Every place `token` may be sent where it may or may not be a job token. */
const casesFor = (TOOLS: string, upload = multipart({ name: 'pkg', version: '1.0', token: TOOLS })): readonly Case[] => [
  ['Authorization: Bearer', 'GET', PACKAGES, { authorization: `Bearer ${TOOLS}` }],
  ['Authorization: Foo Bar <token>', 'GET', PACKAGES, { authorization: `Foo Bar ${TOOLS}` }],
  ['Authorization: <token> (no scheme)', 'GET', PACKAGES, { authorization: TOOLS }],
  ['?access_token=', 'GET', `${PACKAGES}?access_token=${TOOLS}`, {}],
  ['?bearer_token=', 'GET', `${PACKAGES}?bearer_token=${TOOLS}`, {}],
  ['?token=', 'GET', `${PACKAGES}?token=${TOOLS}`, {}],
  ['?private_token=', 'GET', `${PACKAGES}?private_token=${TOOLS}`, {}],
  ['Basic under another user', 'GET', PACKAGES, { authorization: basic('deployer', TOOLS) }],
  ['Basic with the token as the user', 'GET', PACKAGES, { authorization: basic(TOOLS, '') }],
  ['form body token= (PyPI upload)', 'POST', PYPI_UPLOAD, { 'content-type': 'application/x-www-form-urlencoded' }, `name=pkg&token=${TOOLS}`],
  ['JSON body access_token', 'POST', PYPI_UPLOAD, { 'content-type': 'application/json' }, JSON.stringify({ access_token: TOOLS })],
  ['multipart body token= (PyPI upload)', 'POST', PYPI_UPLOAD, upload.headers, upload.body]
]
const CASES = casesFor(TOOLS)

test('a prefixed job token of a project that is not allowlisted is refused wherever it is sent; nothing reaches the upstream', async t => {
  const g = await prefixedGate(t)
  for (const [name, method, path, headers, body] of CASES) {
    const answer = await send(g.url, method, path, headers, body)
    assert.equal(answer.status, 403, `${name}: ${answer.text}`)
    assert.equal(answer.json().code, 'NOT_ALLOWLISTED', name)
  }
  assert.equal(g.seen.length, 0, 'no refused request was forwarded')
  assert.ok(g.gitlab.calls.job > 0, 'the prefixed token was introspected as a job token')
})

// Newer GitLab joins the prefix without a hyphen (`acmeglcbt-`); and GitLab's validation of
// instance_token_prefix is not known, so a prefix beyond the personal access token prefix's
// alphabet (`acme~!`), once taken for no job token wherever it may or may not be one, was
// forwarded unchecked as Bearer.
for (const [what, token, id] of [['joined without a hyphen', 'acmeglcbt-64_toolsjobrunning00000000', 14], ['beyond the personal access token prefix\'s alphabet', 'acme~!-glcbt-64_toolsjobrunning00000000', 15]] as const) {
  test(`a prefix ${what} (\`${token.slice(0, token.indexOf('glcbt-') + 6)}\`): the same refusals`, async t => {
    const g = await prefixedGate(t)
    g.gitlab.jobs.set(token, { ...g.gitlab.jobs.get(TOKENS.tools)!, id })
    for (const [name, method, path, headers, body] of casesFor(token)) {
      const answer = await send(g.url, method, path, headers, body)
      assert.equal(answer.status, 403, `${name}: ${answer.text}`)
      assert.equal(answer.json().code, 'NOT_ALLOWLISTED', name)
    }
    assert.equal(g.seen.length, 0, 'no refused request was forwarded')
  })
}

test('the same refusals through forward-auth; nothing is proxied', async t => {
  const g = await prefixedGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  // nginx sends no body to auth_request: only the cases in the headers and the query.
  for (const [name, method, path, headers, body] of CASES) {
    if (body !== undefined) continue
    const answer = await send(auth, 'GET', '/', { 'x-original-method': method, 'x-original-uri': path, ...headers })
    assert.equal(answer.status, 403, `${name}: ${answer.text}`)
    assert.equal(answer.json().code, 'NOT_ALLOWLISTED', name)
  }
  // Envoy with the body: the multipart upload is inspected.
  const envoy = await send(auth, 'POST', PYPI_UPLOAD, upload.headers, upload.body)
  assert.equal(envoy.status, 403, envoy.text)
  assert.equal(g.seen.length, 0)
})

test('a prefixed job token of an allowlisted project passes, sent upstream as it came', async t => {
  const g = await prefixedGate(t)
  const answer = await send(g.url, 'GET', PACKAGES, { authorization: `Bearer ${APP}` })
  assert.equal(answer.status, 200, answer.text)
  assert.equal(g.seen.length, 1)
  assert.equal(g.seen[0]!.headers.authorization, `Bearer ${APP}`)
  // Its allowlist entry holds read_packages only: a write is refused for the missing policy.
  const write = await send(g.url, 'PUT', '/api/v4/projects/200/packages/generic/pkg/1.0/f.bin', { 'job-token': APP }, 'x')
  assert.equal(write.status, 403, write.text)
  assert.equal(write.json().code, 'MISSING_POLICIES')
  assert.equal(g.seen.length, 1)
})

// ---------------------------------------------------------------------------------------------
// Which prefix the gate says it assumes

/** A fake GitLab whose application settings (administrators only) hold `prefix`. */
async function gitlabWithSettings (t: Parameters<typeof startTestGate>[0], settings: Record<string, unknown>, status = 200, root = ''): Promise<FakeGitlab & { settingsReads: () => number }> {
  const state = { settingsReads: 0 }
  const gitlab: FakeGitlab = await startFakeGitlab({
    fallback: (req, res) => {
      const admin = req.headers['private-token'] === gitlab.serviceToken
      const path = `${root}/api/v4/application/settings`
      if (req.url === path && admin) state.settingsReads++
      const ok = req.url === path && admin && status === 200
      res.writeHead(ok ? 200 : status === 200 ? 404 : status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(ok ? { id: 1, ...settings } : { message: `${status}` }))
    }
  })
  t.after(() => gitlab.close())
  return Object.assign(gitlab, { settingsReads: () => state.settingsReads })
}

function capture (): { lines: Array<{ level: string, fields: Record<string, unknown>, message: string }>, logger: Parameters<typeof announceInstanceTokenPrefix>[0]['logger'] } {
  const lines: Array<{ level: string, fields: Record<string, unknown>, message: string }> = []
  const at = (level: string) => (fields: object, message: string): void => { lines.push({ level, fields: fields as Record<string, unknown>, message }) }
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } }
}

test('the prefix is read from GitLab\'s application settings when not configured, and logged once with its source', async t => {
  const gitlab = await gitlabWithSettings(t, { instance_token_prefix: 'acme' })
  const { lines, logger } = capture()
  const report = await announceInstanceTokenPrefix({ configured: undefined, upstreamUrl: gitlab.url, serviceToken: gitlab.serviceToken, logger })
  assert.deepEqual(report, { prefix: 'acme', source: 'gitlab' })
  assert.equal(gitlab.settingsReads(), 1)
  assert.equal(lines.length, 1)
  assert.equal(lines[0]!.level, 'info')
  assert.deepEqual(lines[0]!.fields, { instance_token_prefix: 'acme', instance_token_prefix_source: 'gitlab' })
  assert.match(lines[0]!.message, /instance token prefix "acme" \(from GitLab's application settings\).*any prefix.*recognised regardless/)
})

test('a configured prefix is used without asking GitLab; a refused or failed read is logged, never fatal', async t => {
  const gitlab = await gitlabWithSettings(t, { instance_token_prefix: 'other' })
  const configured = capture()
  const report = await announceInstanceTokenPrefix({ configured: 'acme', upstreamUrl: gitlab.url, serviceToken: gitlab.serviceToken, logger: configured.logger })
  assert.deepEqual(report, { prefix: 'acme', source: 'setting' })
  assert.equal(gitlab.settingsReads(), 0)
  assert.match(configured.lines[0]!.message, /"acme" \(from GATE_INSTANCE_TOKEN_PREFIX\)/)

  const notAdmin = await gitlabWithSettings(t, {}, 403)
  const refused = capture()
  const r403 = await announceInstanceTokenPrefix({ configured: undefined, upstreamUrl: notAdmin.url, serviceToken: notAdmin.serviceToken, logger: refused.logger })
  assert.equal(r403.source, 'none')
  assert.equal(refused.lines[0]!.level, 'warn')
  assert.match(String(refused.lines[0]!.fields.reason), /403: the service token is not an administrator's/)

  const down = capture()
  const gone = await announceInstanceTokenPrefix({ configured: undefined, upstreamUrl: 'http://127.0.0.1:9', serviceToken: 'glpat-x', timeoutMs: 2000, logger: down.logger })
  assert.equal(gone.source, 'none')
  assert.equal(down.lines[0]!.level, 'warn')
  assert.match(String(down.lines[0]!.fields.reason), /GitLab did not answer/)

  const rooted = await gitlabWithSettings(t, { instance_token_prefix: 'rooted' }, 200, '/gitlab')
  const behindRoot = capture()
  assert.deepEqual(await announceInstanceTokenPrefix({ configured: undefined, upstreamUrl: rooted.url, relativeUrlRoot: '/gitlab', serviceToken: rooted.serviceToken, logger: behindRoot.logger }),
    { prefix: 'rooted', source: 'gitlab' }, 'read under the relative URL root')

  // The gate's own client: the call is counted for /metrics, and the client stays open.
  const shared = createGitlabClient({ url: gitlab.url, serviceToken: gitlab.serviceToken })
  t.after(() => shared.close())
  const viaShared = capture()
  assert.deepEqual(await announceInstanceTokenPrefix({ configured: undefined, gitlab: shared, upstreamUrl: 'http://unused.invalid', serviceToken: undefined, logger: viaShared.logger }),
    { prefix: 'other', source: 'gitlab' })
  assert.equal(shared.stats()['application_settings:ok'], 1)
  assert.equal((await shared.get('/api/v4/application/settings', { endpoint: 'application_settings', as: 'service' })).status, 200, 'still open')
  assert.equal(gitlab.settingsReads(), 2)

  const none = capture()
  assert.deepEqual(await announceInstanceTokenPrefix({ configured: undefined, upstreamUrl: gitlab.url, serviceToken: undefined, logger: none.logger }),
    { prefix: null, source: 'none', reason: 'GATE_INSTANCE_TOKEN_PREFIX and GATE_SERVICE_TOKEN are unset' })
  assert.equal(none.lines[0]!.level, 'info')
  assert.equal(gitlab.settingsReads(), 2, 'without a service token GitLab is not asked')
})

test('serve reads the prefix from GitLab at start and logs it; the service token is never logged', async t => {
  const gitlab = await gitlabWithSettings(t, { instance_token_prefix: 'acme' })
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: root,
    env: { ...process.env, GATE_UPSTREAM_URL: gitlab.url, GATE_SERVICE_TOKEN: gitlab.serviceToken, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_DRAIN_TIMEOUT_MS: '0' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString('utf8') })
  const exited = once(child, 'exit')
  t.after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL')
    await exited
  })
  const line = await eventually(() => out.split('\n').filter(l => l.includes('instance_token_prefix')).map(l => JSON.parse(l) as Record<string, unknown>)[0],
    { timeoutMs: 60_000, message: 'the instance prefix line' })
  assert.equal(line.instance_token_prefix, 'acme')
  assert.equal(line.instance_token_prefix_source, 'gitlab')
  assert.equal(gitlab.settingsReads(), 1)
  child.kill('SIGTERM')
  await exited
  assert.ok(!out.includes(gitlab.serviceToken), 'the service token is not in the log')
})
