// Reads of other/tools (300) by acme/app's job (100), which its allowlist does not list: each
// case either forwarded with its decision's reason, or refused with GitLab's not-allowlisted 403
// and never seen upstream.

import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { TOKENS, type TestGate } from './gate.ts'
import { send } from './http.ts'

export interface OutsideRead {
  readonly name: string
  readonly path: string
  readonly status: 200 | 403
  readonly reason: string
}

const lastDecision = (g: TestGate): Record<string, unknown> | undefined => g.logs.filter(l => l.msg === 'decision').at(-1)

/** Sends each case's GET `/api/v4<path>` with app's job token as a subtest of `t`. */
export async function checkOutsideReads (t: TestContext, g: TestGate, cases: readonly OutsideRead[]): Promise<void> {
  for (const c of cases) {
    await t.test(c.name, async () => {
      const before = g.seen.length
      const res = await send(g.url, 'GET', `/api/v4${c.path}`, { 'job-token': TOKENS.app })
      assert.equal(res.status, c.status, res.text)
      assert.equal(lastDecision(g)?.reason, c.reason)
      if (c.status === 200) {
        assert.equal(g.seen.length, before + 1, 'forwarded')
        return
      }
      assert.equal(g.seen.length, before, 'the upstream never saw it')
      assert.equal(res.json().code, c.reason)
      assert.equal(res.json().message, '403 Forbidden - Authentication by CI/CD job token not allowed from app to tools.')
    })
  }
}
