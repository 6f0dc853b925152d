// Forward-auth took a decision request without X-Original-Content-Length for a request without a
// body. Only the shipped nginx configuration sends that header, and only for HTTP/1.x: ingress-nginx
// sends no length, Traefik without forwardBody and Envoy without with_request_body send neither the
// body nor its length, and nginx knows no length for an HTTP/2 request sent without one. A job
// token in such a request's form body went to GitLab unchecked (the gate saw no credential and
// answered 200). Now a missing declaration means a body the gate cannot see, unless the operator
// says the proxy declares it (GATE_FORWARD_AUTH_BODIES=declared) or sends every body (`sent`).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'
import { needsNginx, startShippedNginx } from '../helpers/nginx.ts'

// Project 300 (other/tools) lists nobody: the job of project 100 may create no deployment there.
const DEPLOYMENTS = '/api/v4/projects/300/deployments'
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const BODY = `job_token=${TOKENS.app}&environment=production&sha=abc&ref=main&tag=false&status=success`

function h2Post (base: string, path: string, headers: Record<string, string>, body: string): Promise<number> {
  const client = http2.connect(base)
  return new Promise<number>((resolve, reject) => {
    // No content-length: HTTP/2 frames the body itself.
    const req = client.request({ ':method': 'POST', ':path': path, ...headers })
    let status = 0
    req.on('response', h => { status = Number(h[':status']) })
    req.resume()
    req.on('end', () => resolve(status))
    req.on('error', reject)
    req.end(body)
  }).finally(() => client.close())
}

test('an HTTP/2 request through the shipped nginx: its form body is not taken for no body', { skip: needsNginx }, async (t) => {
  for (const bodies of [undefined, 'declared']) {
    const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', ...(bodies === undefined ? {} : { GATE_FORWARD_AUTH_BODIES: bodies }) })
    const { base, h2Base } = await startShippedNginx(t, { gitlab: new URL(g.gitlab.url).host, auth: g.gate.authAddress()!.port, api: g.gate.address().port }, { http2: true })
    const status = await h2Post(h2Base, DEPLOYMENTS, FORM, BODY)
    assert.equal(status, 403, `GATE_FORWARD_AUTH_BODIES=${bodies ?? '(default)'}`)
    assert.equal(g.seen.filter(s => s.url === DEPLOYMENTS).length, 0, 'nothing reached GitLab')
    const line = g.logs.find(l => l.reason === 'BODY_NOT_VISIBLE')
    assert.ok(line !== undefined, JSON.stringify(g.logs.filter(l => l.msg === 'decision')))
    // HTTP/1.1 declares the body's absence: a bodiless request with the job's own token passes.
    if (bodies === 'declared') {
      const own = await send(base, 'POST', '/api/v4/projects/100/deployments', { 'job-token': TOKENS.app })
      assert.equal(own.status, 200, own.text)
    }
  }
})

test('proxies that declare no length: ingress-nginx, Traefik without forwardBody, Envoy without with_request_body', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const asked = {
    // ingress-nginx: X-Original-URL and -Method, the client's headers, Content-Length cleared.
    'ingress-nginx': () => send(auth, 'GET', '/', { 'x-original-url': `https://gitlab.example${DEPLOYMENTS}`, 'x-original-method': 'POST', 'x-sent-from': 'nginx-ingress-controller', ...FORM }),
    // A client's own X-Original-Content-Length, passed on by a proxy that does not set it.
    'ingress-nginx, forged length': () => send(auth, 'GET', '/', { 'x-original-url': `https://gitlab.example${DEPLOYMENTS}`, 'x-original-method': 'POST', 'x-original-content-length': '0', ...FORM }),
    // Traefik: X-Forwarded-Method/-Uri; Go drops the Content-Length of a GET without a body.
    traefik: () => send(auth, 'GET', '/', { 'x-forwarded-method': 'POST', 'x-forwarded-uri': DEPLOYMENTS, 'x-forwarded-host': 'gitlab.example', ...FORM }),
    // Envoy: the original method and path, Content-Length 0 for the body it does not send; a
    // POST without a Content-Type is a form to Rack.
    envoy: () => send(auth, 'POST', DEPLOYMENTS, { 'content-length': '0' })
  }
  for (const [proxy, ask] of Object.entries(asked)) {
    const answer = await ask()
    assert.equal(answer.status, 403, `${proxy}: ${answer.text}`)
    assert.equal(answer.json().code, 'BODY_NOT_VISIBLE', proxy)
  }
  // A visible PAT changes nothing (test/security/forward-auth-body-outranks-visible.test.ts), and
  // a GET without a form type carries no parameters in a body.
  assert.equal((await send(auth, 'POST', DEPLOYMENTS, { 'content-length': '0', 'private-token': 'glpat-user' })).status, 403)
  assert.equal((await send(auth, 'GET', '/', { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/v4/projects/200/packages', 'job-token': TOKENS.app })).status, 200)
})

test('GATE_FORWARD_AUTH_BODIES=sent: a decision request without a body stands for a request without one', async (t) => {
  const g = await startTestGate(t, { GATE_AUTH_LISTEN: '127.0.0.1:0', GATE_FORWARD_AUTH_BODIES: 'sent' })
  const auth = `http://127.0.0.1:${g.gate.authAddress()!.port}`
  const own = await send(auth, 'POST', '/api/v4/projects/100/deployments', { 'content-length': '0', 'job-token': TOKENS.app })
  assert.equal(own.status, 200, own.text)
  // A body sent is inspected; a length stated above 0 without the body is still one not seen.
  const sent = await send(auth, 'POST', DEPLOYMENTS, FORM, BODY)
  assert.equal(sent.status, 403)
  assert.equal(sent.json().code, 'NOT_ALLOWLISTED')
  const stated = await send(auth, 'GET', '/', { 'x-forwarded-method': 'POST', 'x-forwarded-uri': DEPLOYMENTS, 'x-original-content-length': '90', ...FORM })
  assert.equal(stated.json().code, 'BODY_NOT_VISIBLE')
})
