// Multipart Content-Types spelt every way around `boundary=` (separators, white space and a
// no-break space before and after the '=', quotes, decoys, what follows), each with a body
// delimited by the boundary Rack itself finds (Rack::Multipart::Parser.parse_boundary, asked of
// Ruby) and with a form body (where Rack finds no boundary it reads the body as a form). The gate
// must find every job token Rack finds and route the method Rack routes, or refuse the request.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rackBoundaries, startRackOracle } from '../helpers/rack-oracle.ts'
import { disagreement, gateUnderTest, JOB_A, type GenRequest } from './differential.ts'
import { requireRack } from './rack-available.ts'

function contentTypes (): string[] {
  const out = new Set<string>()
  for (const media of ['multipart/form-data', 'Multipart/Mixed'])
    for (const sep of ['; ', ';', ';\t', ';\xa0', ', '])
      for (const name of ['boundary', 'xboundary'])
        for (const before of ['', ' ', '\t', '\xa0'])
          for (const after of ['', ' ', '\t', '\xa0', '"', ' "'])
            for (const value of ['abc', 'a\xa0bc'])
              for (const suffix of ['', '"', ';x=y', '\xa0;x=y', '"; charset=utf-8'])
                out.add(`${media}${sep}${name}${before}=${after}${value}${suffix}`)
  return [...out]
}

test('multipart Content-Type spellings: the gate reads every job token and method Rack reads, or refuses', async t => {
  if (!requireRack(t)) return
  const types = contentTypes()
  const boundaries = rackBoundaries(types)
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const gate = gateUnderTest()
  const problems: string[] = []
  let rackReadBody = 0
  for (let i = 0; i < types.length; i++) {
    const type = types[i]!
    const b = boundaries[i]
    const bodies = [Buffer.from(`job_token=${JOB_A}&_method=DELETE`)]
    if (b !== null) bodies.push(Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="job_token"\r\n\r\n${JOB_A}\r\n--${b}\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--${b}--\r\n`, 'latin1'))
    for (const body of bodies) {
      const g: GenRequest = { method: 'POST', path: '/api/v4/projects/42/packages/123', query: '', headers: [['Content-Type', type]], body, framing: 'length', small: false, chunk: 1 << 20 }
      const [answer, verdict] = await Promise.all([oracle.ask({ method: g.method, target: g.path, headers: [...g.headers, ['Content-Length', String(body.length)]], body }), gate.run(g)])
      if (answer.method === 'DELETE') rackReadBody++
      const problem = disagreement(g, answer, verdict)
      if (problem !== null) problems.push(`${JSON.stringify(type)} (Rack's boundary ${JSON.stringify(b)}), ${body[0] === 0x6a ? 'form' : 'multipart'} body: ${problem}`)
    }
  }
  t.diagnostic(`${types.length} content types; Rack read the body's _method in ${rackReadBody} requests`)
  // The spellings reach what they are for: bodies Rack reads.
  assert.ok(rackReadBody > types.length / 4, `Rack read the body in only ${rackReadBody} requests`)
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} disagreements, the first 20 shown`)
})
