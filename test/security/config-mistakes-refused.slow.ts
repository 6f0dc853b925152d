// Finding: configuration mistakes that left `serve` running less strict than asked, silently.
// - A misspelt variable (GATE_NON_API_JOB_TOKEN=deny, without the S) was ignored: the setting
//   meant kept its default (`forward`), and job tokens outside /api/v4 went to GitLab unchecked.
// - GATE_REDIS_URL was handed to ioredis unchecked, which reads an empty or host-less value as
//   Redis on localhost:6379, database 0, and `rediss//...` as a Unix socket, whose failure
//   printed the password in the URL; GATE_UPSTREAM_URL dropped a user and password silently.
// - A *_MS delay over 2^31-1 ms ran after 1 ms; a --config file naming one setting twice kept
//   one silently; an empty GATE_REDIS_SENTINELS started the memory store; a --config file that
//   did not parse was refused with V8's message, which quotes the file, tokens included.
// - A refused URL was printed with its query (ioredis reads `?password=` as the password), and a
//   Sentinel or Cluster node written as `redis://:password@node:6379` with its password.
// Each now stops the start with exit 2 and one line naming the variable, credentials left out.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig, SETTINGS } from '../../src/config.ts'
import { startFakeGitlab } from '../helpers/fake-gitlab.ts'
import { TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { serveOutcome } from '../helpers/serve.ts'

const git = (token: string): Record<string, string> => ({ authorization: 'Basic ' + Buffer.from(`gitlab-ci-token:${token}`).toString('base64') })

// Each test starts its own `serve` processes and waits on them: they run side by side.
describe('configuration mistakes stop the start', { concurrency: true }, () => {
  test('a misspelt GATE_* variable stops serve, naming the setting it looks like; the setting spelt right takes effect', async t => {
    const gitlab = await startFakeGitlab({
      jobs: { [TOKENS.tools]: { id: 3, status: 'running', projectId: 300, userId: 8 } },
      groups: [{ id: 20, fullPath: 'other', parentId: null }],
      projects: [{ id: 300, pathWithNamespace: 'other/tools', namespace: { id: 20, kind: 'group', fullPath: 'other', parentId: null } }],
      fallback: (req, res) => { req.resume(); res.end('{}') }
    })
    t.after(() => gitlab.close())
    const base = { GATE_UPSTREAM_URL: gitlab.url, GATE_SERVICE_TOKEN: gitlab.serviceToken }

    const misspelt = await serveOutcome(t, { ...base, GATE_NON_API_JOB_TOKEN: 'deny' })
    if (misspelt.kind === 'ready') {
      const res = await send(misspelt.api, 'GET', '/acme/lib.git/info/refs?service=git-upload-pack', git(TOKENS.tools))
      assert.fail(`serve started with GATE_NON_API_JOB_TOKEN=deny ignored: a job token outside the API was answered ${res.status}`)
    }
    assert.equal(misspelt.code, 2)
    assert.match(misspelt.stderr, /^job-token-gate: GATE_NON_API_JOB_TOKEN is not a setting \(did you mean GATE_NON_API_JOB_TOKENS\?\)/)

    assert.throws(() => loadConfig({ gate_mode: 'shadow' }), /^ConfigError: gate_mode is not a setting \(did you mean GATE_MODE\?\)/)
    assert.throws(() => loadConfig({ GATE_REDIS_URI: 'redis://r' }), /GATE_REDIS_URI is not a setting \(did you mean GATE_REDIS_URL\?\)/)

    // Spelt right, and with the variables Kubernetes adds for a Service named `gate`.
    const right = await serveOutcome(t, { ...base, GATE_NON_API_JOB_TOKENS: 'deny', GATE_SERVICE_HOST: '10.0.0.1', GATE_SERVICE_PORT: '8181', GATE_PORT: 'tcp://10.0.0.1:8181', GATE_PORT_8181_TCP_ADDR: '10.0.0.1' })
    assert.equal(right.kind, 'ready', (right as { stderr?: string }).stderr)
    const res = await send((right as { api: string }).api, 'GET', '/acme/lib.git/info/refs?service=git-upload-pack', git(TOKENS.tools))
    assert.equal(res.status, 403)
    assert.equal(res.json().code, 'NON_API_JOB_TOKEN')
  })

  test('a GATE_REDIS_URL ioredis would read as another target stops serve, without printing its password', async t => {
    const url = 'rediss//:s3cret@gitlab-redis-master:6379/3'
    const outcome = await serveOutcome(t, { GATE_UPSTREAM_URL: 'http://127.0.0.1:1', GATE_REDIS_URL: url })
    assert.equal(outcome.kind, 'refused', url)
    const { code, stderr } = outcome as { code: number, stderr: string }
    assert.equal(code, 2, stderr)
    assert.match(stderr, /^job-token-gate: GATE_REDIS_URL must be redis:\/\/\[user:password@\]host:port\[\/db\]/)
    assert.doesNotMatch(stderr, /s3cret/, 'the password is not printed')
    // A password with a reserved character left unescaped cuts the URL short.
    for (const cut of ['redis://:s3c#ret@127.0.0.1:1/3', 'redis://:s3c/ret@127.0.0.1:1/3']) {
      assert.throws(() => loadConfig({ GATE_REDIS_URL: cut }), (err: Error) => err instanceof ConfigError && err.message.startsWith('GATE_REDIS_URL must be') && !err.message.includes('s3c'), cut)
    }
  })

  test('GATE_REDIS_URL must name a host and a numeric database: empty, blank and host-less values are refused', () => {
    // Each of these was Redis on localhost:6379 to ioredis (database 0 unless given).
    for (const url of ['', ' ', 'redis:6379', 'redis:///3', 'localhost', 'redis://gitlab-redis-master:6379/three']) {
      assert.throws(() => loadConfig({ GATE_REDIS_URL: url }), (err: unknown) => err instanceof ConfigError && err.message.startsWith('GATE_REDIS_URL must be'), JSON.stringify(url))
    }
    for (const url of ['redis://r', 'redis://:pass%23word@gitlab-redis-master:6379/3', 'rediss://user:p@r:6380/0', 'redis://[::1]:6379/']) {
      assert.equal(loadConfig({ GATE_REDIS_URL: url }).redisUrl, url)
    }
  })

  test('a user or password in GATE_UPSTREAM_URL, which would be dropped, stops serve without printing them', async t => {
    const outcome = await serveOutcome(t, { GATE_UPSTREAM_URL: 'http://gate:s3cret@gitlab-webservice-default:8181' })
    assert.equal(outcome.kind, 'refused')
    const { code, stderr } = outcome as { code: number, stderr: string }
    assert.equal(code, 2)
    assert.match(stderr, /^job-token-gate: GATE_UPSTREAM_URL must not carry a user or password/)
    assert.doesNotMatch(stderr, /s3cret/)
    assert.throws(() => loadConfig({ GATE_UPSTREAM_URL: 'http//gate:s3cret@gitlab' }), (err: Error) => /GATE_UPSTREAM_URL must be an absolute/.test(err.message) && !err.message.includes('s3cret'))
  })

  test('a password in a URL\'s query, or in a Redis node list written as URLs, is not printed either', async t => {
    // ioredis takes `?password=` as the password; Sentinel and Cluster nodes are host:port, and
    // an entry written as a Redis URL with its password was printed whole when refused.
    const outcome = await serveOutcome(t, { GATE_UPSTREAM_URL: 'http://127.0.0.1:1', GATE_SERVICE_TOKEN: 'x', GATE_REDIS_SENTINELS: 'redis://:s3cret@sentinel-0:26379/0', GATE_REDIS_SENTINEL_NAME: 'm' })
    assert.equal(outcome.kind, 'refused')
    const { code, stderr } = outcome as { code: number, stderr: string }
    assert.equal(code, 2, stderr)
    assert.match(stderr, /^job-token-gate: GATE_REDIS_SENTINELS must list host:port entries, got "redis:\/\/\*\*\*@sentinel-0:26379\/0"/)
    assert.doesNotMatch(stderr, /s3cret/)
    const refused = (env: Record<string, string>, starts: string): void => {
      assert.throws(() => loadConfig(env), (err: Error) => err instanceof ConfigError && err.message.startsWith(starts) && !/s3cret/.test(err.message), JSON.stringify(env))
    }
    refused({ GATE_REDIS_URL: 'redis://gitlab-redis-master:6379/db0?password=s3cret' }, 'GATE_REDIS_URL must be')
    refused({ GATE_REDIS_URL: 'redis://gitlab-redis-master:6379/db0?password=s3c@ret' }, 'GATE_REDIS_URL must be')
    refused({ GATE_UPSTREAM_URL: 'gitlab.example.com/?private_token=glpat-s3cret' }, 'GATE_UPSTREAM_URL must be an absolute')
    refused({ GATE_UPSTREAM_URL: 'ftp://gitlab.example.com/?private_token=glpat-s3cret' }, 'GATE_UPSTREAM_URL must be an http')
  })

  test('a delay longer than Node timers take (which they would turn into 1 ms) stops serve', async t => {
    // A drain timeout of "forever" was a shutdown deadline of 1 ms: SIGTERM cut every request at once.
    const outcome = await serveOutcome(t, { GATE_UPSTREAM_URL: 'http://127.0.0.1:1', GATE_DRAIN_TIMEOUT_MS: '9999999999' })
    assert.equal(outcome.kind, 'refused')
    assert.equal((outcome as { code: number }).code, 2)
    assert.match((outcome as { stderr: string }).stderr, /^job-token-gate: GATE_DRAIN_TIMEOUT_MS must be at most 2147483647/)
    for (const setting of Object.values(SETTINGS).filter(s => s.kind === 'int' && s.env.endsWith('_MS'))) {
      assert.throws(() => loadConfig({ [setting.env]: String(2 ** 31) }), new RegExp(`^ConfigError: ${setting.env} must be at most 2147483647`))
      // A "no project" is kept at most as long as a project found.
      const beside = setting.env === 'GATE_PROJECT_NOT_FOUND_TTL_MS' ? { GATE_PROJECT_LOOKUP_TTL_MS: String(2 ** 31 - 1) } : {}
      assert.equal(loadConfig({ [setting.env]: String(2 ** 31 - 1), ...beside })[Object.keys(SETTINGS).find(k => SETTINGS[k as keyof typeof SETTINGS] === setting) as keyof typeof SETTINGS], 2 ** 31 - 1)
    }
  })

  test('a --config file that gives one setting under both its names stops serve', async t => {
    // {"mode": "shadow", "GATE_MODE": "enforce"} ran in shadow mode: the key silently won.
    const dir = mkdtempSync(join(tmpdir(), 'config-twice-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'gate.json')
    writeFileSync(file, JSON.stringify({ upstreamUrl: 'http://127.0.0.1:1', mode: 'shadow', GATE_MODE: 'enforce' }))
    const outcome = await serveOutcome(t, {}, ['--config', file])
    assert.equal(outcome.kind, 'refused')
    assert.equal((outcome as { code: number }).code, 2)
    assert.match((outcome as { stderr: string }).stderr, /^job-token-gate: config file: mode and GATE_MODE are the same setting; keep one/)
  })

  test('a Redis setting that is set but empty stops serve instead of starting the memory store', async t => {
    // GATE_REDIS_SENTINELS: "" (a Helm value left empty) started one memory store per replica.
    const outcome = await serveOutcome(t, { GATE_UPSTREAM_URL: 'http://127.0.0.1:1', GATE_REDIS_SENTINELS: '' })
    assert.equal(outcome.kind, 'refused')
    assert.equal((outcome as { code: number }).code, 2)
    assert.match((outcome as { stderr: string }).stderr, /^job-token-gate: GATE_REDIS_SENTINELS is set but empty/)
    for (const name of ['GATE_REDIS_CLUSTER_NODES', 'GATE_REDIS_SENTINELS', 'GATE_STATE_FILE']) {
      for (const value of ['', ' ', ' , ']) assert.throws(() => loadConfig({ [name]: value }), new RegExp(`^ConfigError: ${name} is set but empty`), `${name}=${JSON.stringify(value)}`)
    }
    assert.throws(() => loadConfig({}, { file: { redisSentinels: [] } }), /GATE_REDIS_SENTINELS is set but empty/)
    assert.equal(loadConfig({}).redisSentinels.length, 0, 'unset: no Sentinels')
  })

  test('a --config file that is not valid JSON stops serve without quoting the tokens it holds', async t => {
    // V8's JSON.parse message quotes the text around the error: `..."ceToken": glpat-SECR"...`.
    const dir = mkdtempSync(join(tmpdir(), 'config-json-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'gate.json')
    writeFileSync(file, '{"upstreamUrl": "http://127.0.0.1:1", "serviceToken": glpat-s3cretservicetoken}')
    const outcome = await serveOutcome(t, {}, ['--config', file])
    assert.equal(outcome.kind, 'refused')
    const { code, stderr } = outcome as { code: number, stderr: string }
    assert.equal(code, 2)
    assert.match(stderr, /^job-token-gate: config file .* must be a JSON object: not valid JSON/)
    assert.doesNotMatch(stderr, /glpat|s3cret/)
  })
})
