// Checks shared by the tests of catalog routes that take job tokens (the world of
// test/helpers/gate.ts: acme/lib, 200, lets acme/platform/web's jobs in with default permissions
// and acme/platform/app's with read_packages only; other/tools is on no allowlist).

import assert from 'node:assert/strict'
import { TOKENS, type SeenRequest, type TestGate } from './gate.ts'
import { send } from './http.ts'

export interface TokenRoute { readonly method: string, readonly path: string }

type Answer = Awaited<ReturnType<typeof send>>

/** Each route reaches GitLab for an allowlisted job, as sent, with the token where `tokenOf` finds it. */
export async function assertForwardedWithToken<R extends TokenRoute> (g: TestGate, routes: readonly R[], sendAs: (route: R, token: string) => Promise<Answer>, tokenOf: (seen: SeenRequest, route: R) => unknown): Promise<void> {
  for (const route of routes) {
    const res = await sendAs(route, TOKENS.web)
    assert.equal(res.status, 200, `${route.method} ${route.path}: ${res.text}`)
    const seen = g.seen.at(-1)!
    assert.equal(`${seen.method} ${seen.url}`, `${route.method} ${route.path}`)
    assert.equal(tokenOf(seen, route), TOKENS.web, `${route.method} ${route.path}: the token is not stripped`)
  }
  assert.equal(g.seen.length, routes.length)
}

/**
 * Each route refused, with GitLab's messages, to a job outside the allowlist and to a
 * fine-grained entry (these routes set no job token policies); nothing reaches GitLab.
 */
export async function assertRefusedOutsideAndFineGrained<R extends TokenRoute> (g: TestGate, routes: readonly R[], sendAs: (route: R, token: string) => Promise<Answer>): Promise<void> {
  for (const route of routes) {
    const outside = await sendAs(route, TOKENS.tools)
    assert.equal(outside.status, 403, `${route.method} ${route.path}: ${outside.text}`)
    assert.equal(outside.json().code, 'NOT_ALLOWLISTED')
    assert.equal(outside.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from tools to lib.')
    const fineGrained = await sendAs(route, TOKENS.app)
    assert.equal(fineGrained.status, 403, `${route.method} ${route.path}: ${fineGrained.text}`)
    assert.equal(fineGrained.json().code, 'NO_POLICIES_FOR_ENDPOINT')
    assert.equal(fineGrained.json().message, '403 Forbidden - This action is unauthorized for CI/CD job tokens.')
  }
  assert.equal(g.seen.length, 0, 'nothing reached GitLab')
}

/** A route's request with `token` in JOB-TOKEN (and a JSON body where the route has one). */
function sendJobToken (g: TestGate, route: GroupRoute, token: string): Promise<Answer> {
  return send(g.url, route.method, route.path, { 'job-token': token, ...(route.body !== undefined ? { 'content-type': 'application/json' } : {}) }, route.body)
}

export interface GroupRoute extends TokenRoute { readonly body?: string }

/**
 * Each route of a top-level group (no project in its URL) reaches GitLab, which decides, with the
 * JOB-TOKEN of any job, inside the allowlist or not, as sent.
 */
export async function assertDeferredToGitlab (g: TestGate, routes: readonly GroupRoute[]): Promise<void> {
  for (const route of routes) {
    for (const token of [TOKENS.web, TOKENS.tools]) {
      const res = await sendJobToken(g, route, token)
      assert.equal(res.status, 200, `${route.method} ${route.path}: ${res.text}`)
      const seen = g.seen.at(-1)!
      assert.equal(`${seen.method} ${seen.url}`, `${route.method} ${route.path}`)
      assert.equal(seen.headers['job-token'], token, `${route.method} ${route.path}: the token is not stripped`)
    }
  }
}

/** With GATE_UNRESOLVED_PROJECT=deny, each such route is refused: no project to decide on. */
export async function assertRefusedWithoutProject (g: TestGate, routes: readonly GroupRoute[]): Promise<void> {
  for (const route of routes) {
    const res = await sendJobToken(g, route, TOKENS.web)
    assert.equal(res.status, 403, `${route.method} ${route.path}: ${res.text}`)
    assert.equal(res.json().code, 'PROJECT_NOT_IN_URL')
  }
  assert.equal(g.seen.length, 0)
}
