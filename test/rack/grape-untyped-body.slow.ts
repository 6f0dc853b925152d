// Bodies sent without a Content-Type against Grape itself (grape-oracle.rb: a JSON-default API
// as GitLab's NuGet, PyPI, Composer, Cargo, Terraform state and MLflow APIs are, with MultiJson
// and Oj). For generated bodies (white space, comments, a BOM, objects of credential and other
// members, escapes, arrays, junk after the document) and each method Grape reads a body for:
// every credential Grape reads is one the gate finds or refuses the body for, and a body whose
// first byte after white space starts no JSON object passes the gate unread and whole. The same
// bodies as `application/json` are checked too (Grape reads those with the same parser).
// Elsewhere (an API declared as GitLab's API::API, with or without the text and binary content
// types some of its APIs add) Grape reads no parameter from a PUT, PATCH or DELETE body without a
// type, so the guard there is lenient: it refuses such a body only for a credential, never for
// not being JSON, and passes whole every body it does not refuse.
// A failure prints the seed; GRAPE_UNTYPED_SEED and GRAPE_UNTYPED_RUNS replay it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import fc from 'fast-check'
import { inspectBody } from '../../src/identity/body-scan.ts'
import { createJsonGuard, looksLikeJsonObject } from '../../src/identity/json-guard.ts'
import { grapeUnavailable, startGrapeOracle, type GrapeApi } from '../helpers/grape-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { propertyRun } from '../helpers/property-run.ts'

const TOKEN = '"glcbt-64_aaaaaaaaaaaaaaaaaaaaaaaa"'
const space = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('', ' ', '\n', '\r\n\t') }, { weight: 1, arbitrary: fc.constantFrom('\f', '\u000b', '\u0000', '/**/', '/* c */ ', '// c\n', '\ufeff') })
const key = fc.constantFrom('"job_token"', '"token"', '"private_token"', '"a"', '"job\\u005ftoken"', '"job_token[]"', '"x"')
const value = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(TOKEN, '"x"', '1', 'true', 'null', '""', `[${TOKEN}]`, `{"k":${TOKEN}}`, '"a\\u0062c"') }, { weight: 1, arbitrary: fc.constantFrom('"\\q"', 'NaN') })
const member = fc.tuple(space, key, space, value, space).map(([a, k, b, v, c]) => `${a}${k}${b}:${v}${c}`)
const document = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(space, fc.array(member, { maxLength: 3 }), space).map(([a, members, b]) => `${a}{${members.join(',')}}${b}`) },
  { weight: 1, arbitrary: fc.tuple(space, fc.array(member, { maxLength: 2 })).map(([a, members]) => `${a}[{${members.join(',')}}]`) },
  { weight: 1, arbitrary: fc.constantFrom('x', '\u0089PNG\r\n', '#!/bin/sh\n{', '{"a":1,}', '{"a":1} trailing', '/') }
)
const body = fc.tuple(document, fc.oneof({ weight: 6, arbitrary: fc.constantFrom('', ' ', '\n') }, { weight: 1, arbitrary: fc.constantFrom('x', ',{}') })).map(([d, tail]) => d + tail)

/**
 * What the streaming guard of an untyped body does with `bytes` cut at `cut`: its error code, and
 * the bytes it let through. `lenient`: as on a route whose API parses no such body (stage.ts).
 */
async function guard (bytes: Buffer, cut: number, lenient = false): Promise<{ code: string | null, out: Buffer }> {
  const chunks: Buffer[] = []
  const sink = new Writable({ write (chunk: Buffer, _e, cb) { chunks.push(chunk); cb() } })
  try {
    await pipeline(Readable.from([bytes.subarray(0, cut), bytes.subarray(cut)]), createJsonGuard({ untyped: true, refuseAnyCredential: true, lenient }), sink)
    return { code: null, out: Buffer.concat(chunks) }
  } catch (err) {
    return { code: (err as { code?: string }).code ?? String(err), out: Buffer.concat(chunks) }
  }
}

test('bodies without a Content-Type or as application/json: every credential Grape reads from one, the gate finds or refuses', async (t) => {
  if (!requireTool(t, grapeUnavailable())) return
  const oracle = startGrapeOracle()
  t.after(() => oracle.close())
  const { seed, numRuns: runs } = propertyRun(t, 'GRAPE_UNTYPED', 1_500)
  let read = 0
  await fc.assert(fc.asyncProperty(body, fc.constantFrom('PUT', 'PATCH', 'DELETE', 'POST'), fc.boolean(), fc.nat(), async (text, method, typed, at) => {
    const bytes = Buffer.from(text, 'utf8')
    const grape = await oracle.ask(method, typed ? 'application/json' : null, bytes)
    const credentials = Object.values(grape.params).flat().filter(v => v !== '')
    if (credentials.length > 0) read++
    if (method === 'POST' || typed) {
      // Read whole: a type-less POST as a form and, starting as an object, as JSON; a typed body as JSON.
      let found: string[]
      try {
        found = (typed ? inspectBody('json', bytes) : inspectBody('form', bytes, '', 16 * 1024, true)).credentials.map(c => c.secret)
      } catch {
        return
      }
      for (const c of credentials) assert.ok(found.includes(c), `${method} ${typed ? 'application/json ' : ''}${JSON.stringify(text)}: Grape reads ${c}, the gate ${JSON.stringify(found)}`)
      return
    }
    const gate = await guard(bytes, at % (bytes.length + 1))
    if (credentials.length > 0) assert.notEqual(gate.code, null, `${method} ${JSON.stringify(text)}: Grape reads ${JSON.stringify(grape.params)}, the gate let it through`)
    if (!looksLikeJsonObject(bytes)) {
      assert.equal(gate.code, null, `${method} ${JSON.stringify(text)}: no JSON object, refused ${gate.code}`)
      assert.ok(gate.out.equals(bytes), 'passed whole')
    }
  }), { seed, numRuns: runs })
  // The generator reaches what it is for: Grape reads a credential from many of the bodies.
  assert.ok(read > runs / 20, `Grape read a credential from only ${read} of ${runs} bodies`)
})

test('bodies without a Content-Type where the API has no JSON default: Grape reads no credential, the lenient guard refuses only credentials', async (t) => {
  if (!requireTool(t, grapeUnavailable())) return
  const oracle = startGrapeOracle()
  t.after(() => oracle.close())
  const { seed, numRuns: runs } = propertyRun(t, 'GRAPE_UNTYPED', 1_500)
  let unparsed = 0
  await fc.assert(fc.asyncProperty(body, fc.constantFrom('PUT', 'PATCH', 'DELETE'), fc.constantFrom<GrapeApi>('json', 'json_txt'), fc.nat(), async (text, method, api, at) => {
    const bytes = Buffer.from(text, 'utf8')
    const grape = await oracle.ask(method, null, bytes, api)
    // GitLab's API::API refuses a body without a type (415); with the text type, it is text.
    assert.equal(grape.status, bytes.length === 0 ? 200 : api === 'json' ? 415 : 200, `${api} ${method} ${JSON.stringify(text)}: ${JSON.stringify(grape)}`)
    assert.deepEqual(grape.params, {}, `${api} ${method} ${JSON.stringify(text)}: Grape reads ${JSON.stringify(grape.params)}`)
    const cut = at % (bytes.length + 1)
    const lenient = await guard(bytes, cut, true)
    const strict = await guard(bytes, cut)
    if (strict.code === 'BODY_NOT_PARSEABLE') unparsed++
    // A credential it finds before the body turns out not to be JSON is refused, as the strict guard refuses it.
    assert.ok(lenient.code === null || lenient.code === strict.code, `${method} ${JSON.stringify(text)}: lenient ${lenient.code}, strict ${strict.code}`)
    assert.ok(lenient.code === null || ['JSON_CREDENTIAL_NOT_ALLOWED', 'CREDENTIAL_AMBIGUOUS'].includes(lenient.code), `${method} ${JSON.stringify(text)}: refused ${lenient.code}`)
    if (lenient.code === null) assert.ok(lenient.out.equals(bytes), `${method} ${JSON.stringify(text)}: not passed whole`)
  }), { seed, numRuns: runs })
  // The generator reaches what it is for: bodies the strict guard refuses as no JSON.
  assert.ok(unparsed > runs / 20, `only ${unparsed} of ${runs} bodies were no JSON to the strict guard`)
})
