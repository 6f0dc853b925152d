import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, describeSettings, loadConfig, readConfigFile, SETTINGS } from '../../src/config.ts'

test('defaults, parsing and freezing', () => {
  const config = loadConfig({ GATE_UPSTREAM_URL: 'http://gitlab:8181/' })
  assert.equal(config.upstreamUrl, 'http://gitlab:8181')
  assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8181 })
  assert.deepEqual(config.healthListen, { host: '0.0.0.0', port: 8182 })
  assert.equal(config.mode, 'enforce')
  assert.equal(config.redisUrl, undefined)
  assert.equal(config.authListen, undefined)
  assert.equal(config.enforceInboundScope, true)
  assert.deepEqual(config.trustedProxies, ['127.0.0.1', '::1'])
  // Idle client connections outlive a front proxy's (ingress-nginx, cloud load balancers: 60 s).
  assert.ok(config.clientKeepAliveTimeoutMs > 60_000)
  assert.ok(Object.isFrozen(config))
  const custom = loadConfig({ GATE_LISTEN: '[::1]:9000', GATE_MODE: 'shadow', GATE_SHADOW_RESOURCES: 'packages, releases', GATE_GRANT_CACHE_TTL_MS: '0', GATE_ENFORCE_INBOUND_SCOPE: 'false' })
  assert.deepEqual(custom.listen, { host: '::1', port: 9000 })
  assert.equal(custom.mode, 'shadow')
  assert.deepEqual(custom.shadowResources, ['packages', 'releases'])
  assert.equal(custom.grantCacheTtlMs, 0)
  assert.equal(custom.enforceInboundScope, false)
})

const bad: Array<[Record<string, string>, RegExp]> = [
  [{ GATE_UPSTREAM_URL: 'not a url' }, /^GATE_UPSTREAM_URL must be an absolute http\(s\) URL/],
  [{ GATE_UPSTREAM_URL: 'ftp://gitlab' }, /^GATE_UPSTREAM_URL must be an http or https URL/],
  [{ GATE_LISTEN: '8181' }, /^GATE_LISTEN must be host:port/],
  [{ GATE_HEALTH_LISTEN: 'localhost:99999' }, /^GATE_HEALTH_LISTEN must be host:port/],
  [{ GATE_MODE: 'audit' }, /^GATE_MODE must be one of enforce, shadow/],
  [{ GATE_GRANT_CACHE_TTL_MS: '10s' }, /^GATE_GRANT_CACHE_TTL_MS must be a whole number/],
  [{ GATE_IDENTITY_TIMEOUT_MS: '0' }, /^GATE_IDENTITY_TIMEOUT_MS must be at least 1/],
  [{ GATE_PROJECT_NOT_FOUND_TTL_MS: '0' }, /^GATE_PROJECT_NOT_FOUND_TTL_MS must be at least 1/],
  // A number past what the gate reads exactly was said to be too small.
  [{ GATE_PROJECT_NOT_FOUND_TTL_MS: '99999999999999999999' }, /^GATE_PROJECT_NOT_FOUND_TTL_MS must be at most 2147483647 \(about 24 days\), got 99999999999999999999$/],
  [{ GATE_MAX_INSPECTED_BODY_BYTES: '9007199254740993' }, /^GATE_MAX_INSPECTED_BODY_BYTES must be at most 9007199254740991, got 9007199254740993$/],
  // Kept longer than a project found, it was cut to that without a word.
  [{ GATE_PROJECT_NOT_FOUND_TTL_MS: '60001' }, /^GATE_PROJECT_NOT_FOUND_TTL_MS must be at most GATE_PROJECT_LOOKUP_TTL_MS \(60000\), got 60001$/],
  [{ GATE_PROJECT_LOOKUP_TTL_MS: '5000', GATE_PROJECT_NOT_FOUND_TTL_MS: '5001' }, /^GATE_PROJECT_NOT_FOUND_TTL_MS must be at most GATE_PROJECT_LOOKUP_TTL_MS \(5000\)/],
  [{ GATE_ENFORCE_INBOUND_SCOPE: 'yes' }, /^GATE_ENFORCE_INBOUND_SCOPE must be true or false/],
  [{ GATE_TRUSTED_PROXIES: 'nginx' }, /^GATE_TRUSTED_PROXIES must list IP addresses or CIDR ranges .*"nginx"/],
  [{ GATE_TRUSTED_PROXIES: '10.0.0.0/33' }, /^GATE_TRUSTED_PROXIES must list IP addresses or CIDR ranges .*"10\.0\.0\.0\/33"/],
  [{ GATE_TRUSTED_PROXIES: '127.0.0.1, fd00::/129' }, /^GATE_TRUSTED_PROXIES .*"fd00::\/129"/],
  [{ GATE_TRUSTED_PROXIES: '10.0.0.0/' }, /^GATE_TRUSTED_PROXIES .*"10\.0\.0\.0\/"/],
  [{ GATE_TRUSTED_PROXIES: '10.0.0.0/8/8' }, /^GATE_TRUSTED_PROXIES /],
  [{ GATE_TRUSTED_PROXIES: '10.0.0.0/-1' }, /^GATE_TRUSTED_PROXIES /],
  [{ GATE_TRUSTED_PROXIES: 'gitlab.example.com/24' }, /^GATE_TRUSTED_PROXIES /],
  [{ GATE_REDIS_URL: 'redis://r', GATE_STATE_FILE: '/tmp/x.json' }, /GATE_STATE_FILE is for the memory store/],
  [{ GATE_REDIS_URL: 'redis://r', GATE_REDIS_CLUSTER_NODES: 'a:1' }, /set only one of GATE_REDIS_URL/],
  [{ GATE_IDENTITY_RESOLVER: 'jwt' }, /GATE_JWT_KEY is required/],
  // The operator token opens every allowlist to anyone who reaches the gate with it: a short one
  // could be guessed, and no failed attempt is counted. Counted in characters, not UTF-16 units.
  [{ GATE_ADMIN_TOKEN: 'operator-secret' }, /^GATE_ADMIN_TOKEN must be at least 20 characters .*got 15$/],
  [{ GATE_ADMIN_TOKEN: '\u{1F511}'.repeat(19) }, /^GATE_ADMIN_TOKEN must be at least 20 characters .*got 19$/]
]

test('GATE_PROJECT_NOT_FOUND_TTL_MS: up to GATE_PROJECT_LOOKUP_TTL_MS; its default beside a shorter one is cut to it', () => {
  assert.equal(loadConfig({ GATE_PROJECT_NOT_FOUND_TTL_MS: '60000' }).projectNotFoundTtlMs, 60000)
  assert.equal(loadConfig({ GATE_PROJECT_LOOKUP_TTL_MS: '5000' }).projectNotFoundTtlMs, 10000)
  assert.throws(() => loadConfig({}, { file: { projectNotFoundTtlMs: 70000 } }), /^ConfigError: GATE_PROJECT_NOT_FOUND_TTL_MS must be at most/)
})

test('an operator token of 20 characters or more starts; none, or an empty one, leaves the operator out', () => {
  assert.equal(loadConfig({ GATE_ADMIN_TOKEN: 'a'.repeat(20) }).adminToken, 'a'.repeat(20))
  assert.equal(loadConfig({}).adminToken, undefined)
  assert.equal(loadConfig({ GATE_ADMIN_TOKEN: '' }).adminToken, '')
})

for (const [env, message] of bad) {
  test(`a bad value stops the start naming the variable: ${Object.keys(env).join(', ')}`, () => {
    assert.throws(() => loadConfig(env), (err: Error) => err instanceof ConfigError && message.test(err.message))
  })
}

test('a required setting names its variable', () => {
  assert.throws(() => loadConfig({}, { required: ['upstreamUrl'] }), /GATE_UPSTREAM_URL is required/)
})

test('a config file sets the same keys; the environment wins; unknown keys are refused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'config-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'gate.json')
  writeFileSync(file, JSON.stringify({ upstreamUrl: 'http://from-file:1', GATE_MODE: 'shadow', shadowResources: ['packages'] }))
  const config = loadConfig({ GATE_MODE: 'enforce' }, { file: readConfigFile(file) })
  assert.equal(config.upstreamUrl, 'http://from-file:1')
  assert.equal(config.mode, 'enforce')
  assert.deepEqual(config.shadowResources, ['packages'])
  assert.throws(() => loadConfig({}, { file: { upstreamURL: 'x' } }), /config file: unknown setting "upstreamURL"/)
  writeFileSync(file, '[1]')
  assert.throws(() => readConfigFile(file), /must be a JSON object/)
  assert.throws(() => readConfigFile(join(dir, 'missing.json')), /cannot read config file .*ENOENT/)
})

test('serve --help lists every setting with its variable', () => {
  const help = describeSettings()
  // Each name, then at least one space before its description, however long the name.
  for (const setting of Object.values(SETTINGS)) assert.match(help, new RegExp(`^  ${setting.env} +\\S`, 'm'), `${setting.env} is listed`)
  assert.match(help, /GATE_LISTEN +host:port the gate serves API traffic on \[default: 0\.0\.0\.0:8181\]/)
})

test('overrides (command-line flags) win over the environment and the config file', () => {
  const env = { GATE_UPSTREAM_URL: 'http://gitlab:8181', GATE_CATALOG_DIR: '/from/env' }
  assert.equal(loadConfig(env).catalogDir, '/from/env')
  assert.equal(loadConfig(env, { file: { catalogDir: '/from/file' }, overrides: { catalogDir: '/from/flag' } }).catalogDir, '/from/flag')
  assert.equal(loadConfig({ GATE_UPSTREAM_URL: 'http://gitlab:8181' }, { file: { catalogDir: '/from/file' }, overrides: {} }).catalogDir, '/from/file')
})
