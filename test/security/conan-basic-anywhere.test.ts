// Conan's routes read HTTP Basic their own way (lib/api/helpers/packages_manager_clients_helpers.rb,
// decode_token): the text after the first `Basic ` anywhere in Authorization, whatever precedes
// it, decoded, and its password taken as a job token under any user name. The gate read Basic
// as Rails does (the scheme is the first word), so `Authorization: Bearer Basic <base64>`,
// `Token Basic ...` or `XBasic ...` held no job token for it: the request was forwarded
// undecided while GitLab's Conan API authenticated the job (its PAT and OAuth lookups find
// nothing in such a header and do not raise there). Now such a password is a job token on Conan
// routes too.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestGate, TOKENS } from '../helpers/gate.ts'
import { send } from '../helpers/http.ts'

// Project 300 (other/tools) lists nobody: the job of project 100 may not search its packages.
const CONAN = '/api/v4/projects/300/packages/conan/v1/conans/pkg/1.0/other+tools/stable/search'
const BASIC = Buffer.from(`someone:${TOKENS.app}`).toString('base64')

test('a Conan route: Basic credentials after any text in Authorization are read as Conan reads them', async (t) => {
  const g = await startTestGate(t)
  // The whole header is another credential beside the job token in it: refused as ambiguous.
  for (const authorization of [`Bearer Basic ${BASIC}`, `Token Basic ${BASIC}`, `XBasic ${BASIC}`]) {
    const answer = await send(g.url, 'GET', CONAN, { authorization })
    assert.equal(answer.status, 401, `${authorization.slice(0, 12)}: ${answer.text}`)
    assert.equal(answer.json().code, 'CREDENTIAL_AMBIGUOUS')
  }
  const plain = await send(g.url, 'GET', CONAN, { authorization: `Basic ${BASIC}` })
  assert.equal(plain.json().code, 'NOT_ALLOWLISTED')
  assert.equal(g.seen.filter(s => s.url === CONAN).length, 0, 'nothing reached GitLab')
  // Elsewhere GitLab reads Basic as Rails does: a word before `Basic` makes it no Basic at all.
  const npm = await send(g.url, 'GET', '/api/v4/projects/300/packages/npm/-/package/foo/dist-tags', { authorization: `Token Basic ${Buffer.from('someone:secret').toString('base64')}` })
  assert.equal(npm.status, 200, npm.text)
})
