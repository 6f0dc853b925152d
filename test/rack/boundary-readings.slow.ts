// The boundary of a multipart Content-Type as Rack 2.2 (Rack::Multipart::Parser.parse_boundary),
// Go (net/http's MultipartReader(), as Workhorse takes a body) and the gate read it, for types
// spelt every way a boundary parameter can be: white space before the `;` after it or at the end,
// quoted with escapes, repeated, in RFC 2231 form, over 70 characters. Where the gate reads a
// boundary, Go reads the same one, and Rack the same one or one with white space after it: Rack
// strips each line before it compares it with `--boundary`, so it then finds no delimiter and
// raises, reading no part (asked of Rack with a body framed by its own boundary).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createBodyScanner } from '../../src/identity/body-scan.ts'
import { goMultipart, goUnavailable } from '../helpers/go-multipart.ts'
import { rackBoundaries, startRackOracle } from '../helpers/rack-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { JOB_A } from './differential.ts'
import { requireRack } from './rack-available.ts'

const B = 'readings-b0undary'
const LONG = 'x'.repeat(71)

function contentTypes (): string[] {
  const values = [B, `"${B}"`, `${B} `, `${B}\t`, `"${B}" `, `"${B} "`, `" ${B}"`, `"a\\"b"`, `"a\\\\b"`, `"a\\b"`, `"${B}\\"`, 'x'.repeat(70), LONG, `"${LONG}"`, `a b`, `"a b"`, `a:b`, `"a/b"`, `${B}"`, `"${B}`]
  const seconds = ['', `; boundary=${B}`, '; boundary=other', `; boundary="${B}"`, `; BOUNDARY=${B}`, `; boundary*=utf-8''${B}`, "; boundary*=utf-8''other", '; boundary*0=other']
  const suffixes = ['', ';', ' ;', ';x=y', ' ;x=y', '\t;x=y', '; charset=utf-8', ',x', '; x', ' ']
  const out = new Set<string>()
  for (const media of ['multipart/form-data', 'multipart/mixed'])
    for (const sep of ['; ', ';', ' ; ', ';\t'])
      for (const value of values)
        for (const second of seconds)
          for (const suffix of suffixes)
            if (second === '' || suffix === '') out.add(`${media}${sep}boundary=${value}${second}${suffix}`)
  return [...out]
}

test('a boundary the gate reads is the one Go reads, and Rack reads it or no part at all', async t => {
  if (!requireTool(t, goUnavailable()) || !requireRack(t)) return
  const types = contentTypes()
  const rack = rackBoundaries(types)
  const go = goMultipart(types.map(contentType => ({ boundary: '', body: Buffer.alloc(0), contentType })))
  const scanner = createBodyScanner()
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const failures: string[] = []
  const counts = { read: 0, refused: 0, rackSpaced: 0 }
  for (const [i, type] of types.entries()) {
    const plan = scanner.plan({ 'content-type': type, 'content-length': '100' }, 'POST')
    if (plan.kind === 'rejected') {
      counts.refused++
      continue
    }
    const gate = 'boundary' in plan ? plan.boundary ?? null : null
    const goBoundary = go[i]!.boundary ?? null
    if (goBoundary !== null && goBoundary !== gate) failures.push(`${JSON.stringify(type)}: Go reads ${JSON.stringify(goBoundary)}, the gate ${JSON.stringify(gate)}`)
    const r = rack[i]!
    if (gate === null) {
      if (r !== null) failures.push(`${JSON.stringify(type)}: Rack reads ${JSON.stringify(r)}, the gate no multipart`)
      continue
    }
    counts.read++
    if (r === null || r === gate) continue
    if (!(r.startsWith(gate) && r.slice(gate.length).trim() === '')) {
      failures.push(`${JSON.stringify(type)}: Rack reads ${JSON.stringify(r)}, the gate ${JSON.stringify(gate)}`)
      continue
    }
    // Rack's boundary is the gate's with white space after it: a body framed by it, as Rack would
    // want it, gives Rack no part.
    counts.rackSpaced++
    const body = Buffer.from(`--${r}\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n${JOB_A}\r\n--${r}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--${r}--\r\n`, 'latin1')
    const answer = await oracle.ask({ method: 'POST', target: '/api/v4/projects/42/packages/pypi', headers: [['Content-Type', type], ['Content-Length', String(body.length)]], body })
    if (answer.method !== 'POST' || answer.creds.some(([where]) => where.startsWith('body:'))) failures.push(`${JSON.stringify(type)}: Rack read a part under ${JSON.stringify(r)}`)
  }
  t.diagnostic(`${types.length} types: ${counts.read} read by the gate (${counts.rackSpaced} with white space after Rack's boundary), ${counts.refused} refused`)
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} types read otherwise`)
  assert.ok(counts.read > 100 && counts.refused > 500 && counts.rackSpaced > 20, JSON.stringify(counts))
})
