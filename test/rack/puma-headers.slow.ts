// How Puma, the server GitLab runs Rails in, reads the header names the gate forwards, checked
// against a real Puma (Debian's package) rather than our reading of it: Puma reads '_' in a name
// as '-' (`X_Forwarded_Port` is X-Forwarded-Port to Rails, `Private_Token` is PRIVATE-TOKEN),
// and since its CVE-2024-45614 fix ignores the '_' spelling only when the '-' one came too. So
// the gate's rules on forwarded headers hold for every spelling: a client cannot set what only a
// trusted proxy may say, nor frame or type the body with a second spelling.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.ts'
import { createGate } from '../../src/gate/server.ts'
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import { createJobResolver } from '../../src/identity/resolver.ts'
import { cookieHeader } from '../../src/identity/credentials.ts'
import { rawRequest } from '../helpers/http.ts'
import { requirePuma, startPuma } from '../helpers/puma.ts'

/** The env Puma built for a request sent as `lines` to `port`. */
async function envOf (port: number, lines: readonly string[], body = ''): Promise<Record<string, string>> {
  const answer = await rawRequest(port, lines, body)
  assert.equal(answer.status, 200, answer.body)
  return JSON.parse(answer.body) as Record<string, string>
}

test('Puma reads an \'_\' spelling as the \'-\' header, unless the \'-\' one came too (what the gate\'s readings rest on)', async (t) => {
  if (!requirePuma(t)) return
  const puma = await startPuma(t)
  const port = Number(new URL(puma.url).port)
  const alone = await envOf(port, ['GET /api/graphql HTTP/1.1', 'Private_Token: glpat-underscore', 'X_Forwarded_Port: 8443', 'Job_Token: glcbt-64_x'])
  assert.equal(alone.HTTP_PRIVATE_TOKEN, 'glpat-underscore', `Puma ${puma.version}`)
  assert.equal(alone.HTTP_X_FORWARDED_PORT, '8443')
  assert.equal(alone.HTTP_JOB_TOKEN, 'glcbt-64_x')
  const both = await envOf(port, ['GET /api/graphql HTTP/1.1', 'Private-Token: glpat-dash', 'Private_Token: glpat-underscore'])
  assert.equal(both.HTTP_PRIVATE_TOKEN, 'glpat-dash')
  // An '_' spelling of Content-Type is not the body's type to Rack.
  const typed = await envOf(port, ['POST /x HTTP/1.1', 'Content_Type: application/x-www-form-urlencoded'], 'a=1')
  assert.equal(typed.CONTENT_TYPE, undefined)
  assert.equal(typed.HTTP_CONTENT_TYPE, 'application/x-www-form-urlencoded')
})

test('through the gate, Puma sees only the gate\'s X-Forwarded-* and X-Request-Id, whatever the client\'s spelling', async (t) => {
  if (!requirePuma(t)) return
  const puma = await startPuma(t)
  // 127.0.0.1 is not a trusted proxy here: the client's X-Forwarded-* are not believed.
  const config = loadConfig({ GATE_UPSTREAM_URL: puma.url, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_TRUSTED_PROXIES: '10.0.0.0/8', GATE_SERVICE_TOKEN: 'unused-service-token' })
  const gate = createGate(config, { store: await createMemoryStore(), resolver: createJobResolver({ upstream: puma.url, serviceToken: 'unused-service-token' }), logger: pino({ level: 'silent' }) })
  await gate.listen()
  t.after(() => gate.close(0))
  const port = gate.address().port
  const spoofed = ['For', 'Host', 'Proto', 'Port', 'Ssl', 'Scheme', 'Prefix'].map(part => `X_Forwarded_${part}: spoofed-${part.toLowerCase()}`)
  const env = await envOf(port, ['GET /api/v4/projects/1/releases HTTP/1.1', ...spoofed, 'x_forwarded_for: 6.6.6.6', 'X_Request_Id: spoofed-id', 'User_Agent: ci-tool/1.0'])
  assert.equal(env.HTTP_X_FORWARDED_FOR, '127.0.0.1')
  assert.equal(env.HTTP_X_FORWARDED_PROTO, 'http')
  assert.equal(env.HTTP_X_FORWARDED_HOST, '127.0.0.1')
  for (const key of ['HTTP_X_FORWARDED_PORT', 'HTTP_X_FORWARDED_SSL', 'HTTP_X_FORWARDED_SCHEME', 'HTTP_X_FORWARDED_PREFIX']) assert.equal(env[key], undefined, key)
  assert.match(env.HTTP_X_REQUEST_ID ?? '', /^[0-9A-Za-z-]+$/)
  assert.notEqual(env.HTTP_X_REQUEST_ID, 'spoofed-id')
  // Any other '_' spelling is the client's own business and reaches GitLab.
  assert.equal(env.HTTP_USER_AGENT, 'ci-tool/1.0')

  // The body is framed and typed by the real headers only.
  const posted = await envOf(port, ['POST /api/v4/projects/1/releases HTTP/1.1', 'Content-Type: application/json', 'Content_Type: application/x-www-form-urlencoded', 'Content_Length: 99', 'Content_Encoding: gzip'], '{"name":"v1"}')
  assert.equal(posted.CONTENT_TYPE, 'application/json')
  assert.equal(posted.CONTENT_LENGTH, '13')
  for (const key of ['HTTP_CONTENT_TYPE', 'HTTP_CONTENT_LENGTH', 'HTTP_CONTENT_ENCODING']) assert.equal(posted[key], undefined, key)
})

test('repeated Cookie lines reach Puma through the gate as Puma joins them itself: the value the users\' package rules ask GitLab about', async (t) => {
  if (!requirePuma(t)) return
  const puma = await startPuma(t)
  const lines = ['Cookie: theme=dark', 'Cookie: _gitlab_session=0123abcd']
  // Puma itself joins them with ', ' (Rack then finds one cookie, `theme`, whose value holds the rest).
  const direct = await envOf(Number(new URL(puma.url).port), ['GET /api/v4/user HTTP/1.1', ...lines])
  assert.equal(direct.HTTP_COOKIE, 'theme=dark, _gitlab_session=0123abcd', `Puma ${puma.version}`)
  assert.equal(direct.HTTP_COOKIE, cookieHeader({ headers: {}, rawHeaders: ['Cookie', 'theme=dark', 'Cookie', '_gitlab_session=0123abcd'] }))
  const config = loadConfig({ GATE_UPSTREAM_URL: puma.url, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_SERVICE_TOKEN: 'unused-service-token' })
  const gate = createGate(config, { store: await createMemoryStore(), resolver: createJobResolver({ upstream: puma.url, serviceToken: 'unused-service-token' }), logger: pino({ level: 'silent' }) })
  await gate.listen()
  t.after(() => gate.close(0))
  // Node's parser joins them with '; ', in which Rack finds the session: not what is forwarded.
  const through = await envOf(gate.address().port, ['GET /acme/lib/-/ml/models HTTP/1.1', ...lines])
  assert.equal(through.HTTP_COOKIE, direct.HTTP_COOKIE)
  // One line goes as it came.
  const one = await envOf(gate.address().port, ['GET /acme/lib/-/ml/models HTTP/1.1', 'Cookie: theme=dark; _gitlab_session=0123abcd'])
  assert.equal(one.HTTP_COOKIE, 'theme=dark; _gitlab_session=0123abcd')
})

test('Puma keeps blank Cookie lines in its join, and the gate reads and forwards them as it does', async (t) => {
  if (!requirePuma(t)) return
  const puma = await startPuma(t)
  const config = loadConfig({ GATE_UPSTREAM_URL: puma.url, GATE_LISTEN: '127.0.0.1:0', GATE_HEALTH_LISTEN: '127.0.0.1:0', GATE_SERVICE_TOKEN: 'unused-service-token' })
  const gate = createGate(config, { store: await createMemoryStore(), resolver: createJobResolver({ upstream: puma.url, serviceToken: 'unused-service-token' }), logger: pino({ level: 'silent' }) })
  await gate.listen()
  t.after(() => gate.close(0))
  // Each value as Node's parser keeps it: surrounding spaces and tabs trimmed, as Workhorse (Go)
  // trims them before Puma (Puma itself skips leading spaces only; a leading tab reaches Rails).
  const cases: string[][] = [['', '_gitlab_session=0123abcd'], ['', '', 'a=1'], ['a=1', ''], ['theme=dark', '', '_gitlab_session=0123abcd']]
  for (const values of cases) {
    const lines = values.map(v => `Cookie: ${v}`)
    const direct = await envOf(Number(new URL(puma.url).port), ['GET /api/v4/user HTTP/1.1', ...lines])
    const raw = values.flatMap(v => ['Cookie', v])
    assert.equal(cookieHeader({ headers: {}, rawHeaders: raw }), direct.HTTP_COOKIE, `${JSON.stringify(values)} (Puma ${puma.version})`)
    const through = await envOf(gate.address().port, ['GET /acme/lib/-/ml/models HTTP/1.1', ...lines])
    // Puma trims the end of the one line the gate sends (`a=1, ` is `a=1,`): the last cookie's value only.
    assert.equal(through.HTTP_COOKIE, direct.HTTP_COOKIE!.trimEnd(), JSON.stringify(values))
  }
  // Blank lines alone are no cookies at all.
  assert.equal(cookieHeader({ headers: {}, rawHeaders: ['Cookie', '', 'Cookie', ''] }), undefined)
})
