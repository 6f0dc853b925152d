// Multipart GraphQL bodies read by the gate (src/identity/rack-multipart.ts through
// src/admin/graphql.ts) against Rack 2.2 itself (Rack::Request#POST). For generated bodies of
// delimiter lines with and without CRLF, header lines of every form parsers read names from
// (quoted and bare names, escapes, filename here and there, Content-ID, Content-Type, LF-only and
// folded lines) and GraphQL values:
// - a body with no upload in Rack's reading is read exactly as Rack reads it, or raises where it raises;
// - where an upload is in it, every text parameter Rack gives GitLab's GraphQL is the gate's too;
// - bodies written as curl and browsers write them are never refused as doubtful.
// A failure prints the seed; GRAPHQL_MULTIPART_SEED and GRAPHQL_MULTIPART_RUNS replay it.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { isGraphqlPartName, mapKeyMatcher, readGraphqlParams } from '../../src/admin/graphql.ts'
import { startRackOracle } from '../helpers/rack-oracle.ts'
import { propertyRun } from '../helpers/property-run.ts'
import { requireRack } from './rack-available.ts'

const B = 'gQ7x'
const CONTENT_TYPE = `multipart/form-data; boundary=${B}`

const DELIMITERS = [`--${B}\r\n`, `--${B}\r\n`, `--${B}\r\n`, `--${B}\n`, `--${B}  \r\n`, ` --${B}\r\n`, `x--${B}\r\n`, `--${B}\u0000\r\n`, `--${B}--\r\n`, `--${B}`]
const CLOSINGS = [`--${B}--\r\n`, `--${B}--\r\n`, `--${B}--`, `--${B}--x\r\n`, `--${B}\r\n`, '', `--${B}-- \r\n`]
const NAMES = ['query', 'variables', 'operationName', 'private_token', '_json[]', '_json[][query]', 'operations', 'a']
const name = fc.constantFrom(...NAMES)
const HEADER = fc.oneof(
  name.map(n => `Content-Disposition: form-data; name="${n}"\r\n`),
  name.map(n => `Content-Disposition: form-data; name=${n}\r\n`),
  name.map(n => `content-disposition: form-data;name="${n}"\r\n`),
  name.map(n => `Content-Disposition: form-data; name="${n.slice(0, 2)}\\${n.slice(2)}"\r\n`),
  name.map(n => `Content-Disposition: form-data; name=${n}; x="; filename=y"\r\n`),
  name.map(n => `Content-Disposition: form-data; name="${n}"; filename="f.txt"\r\n`),
  name.map(n => `Content-Disposition: form-data; name="${n}"; filename=""\r\n`),
  name.map(n => `Content-Disposition: form-data; name="a"; name="${n}"\r\n`),
  name.map(n => `Content-ID: ${n}\r\n`),
  name.map(n => `Content-Type: ${n}\r\n`),
  name.map(n => `Content-Disposition: form-data; name="${n}"\n`),
  fc.constant('Content-Type: text/plain; filename=x\r\n'),
  fc.constant('Content-Type: application/json\r\n'),
  fc.constant('X-A: b\r\n'),
  fc.constant(' folded\r\n'),
  fc.constant('X-A: b\n')
)
const BLANKS = ['\r\n', '\r\n', '\r\n', '\n', '']
const VALUES = ['{ a }', 'mutation { b }', '{"query":"{ c }"}', 'glpat-x', '', 'v\r\n', `v\r\n--${B}x`, 'v\n']
const ENDS = ['\r\n', '\r\n', '\r\n', '', '\n']

const part = fc.record({
  delimiter: fc.constantFrom(...DELIMITERS),
  headers: fc.array(HEADER, { minLength: 0, maxLength: 3 }),
  blank: fc.constantFrom(...BLANKS),
  value: fc.constantFrom(...VALUES),
  end: fc.constantFrom(...ENDS)
}).map(p => p.delimiter + p.headers.join('') + p.blank + p.value + p.end)
const body = fc.record({
  preamble: fc.constantFrom('', '', 'preamble\r\n', `x--${B}\r\n`),
  parts: fc.array(part, { minLength: 1, maxLength: 4 }),
  closing: fc.constantFrom(...CLOSINGS)
}).map(b => b.preamble + b.parts.join('') + b.closing)

/** The gate's parameters as plain data (they are built on null-prototype objects). */
const plain = (value: unknown): unknown => value === undefined ? undefined : JSON.parse(JSON.stringify(value))

/** Whether Rack's value holds an upload (the oracle writes one as "(file)"). */
const hasFile = (value: unknown): boolean => JSON.stringify(value).includes('"(file)"')

test('GraphQL multipart bodies: Rack\'s fields are the gate\'s; where an upload is among them, every text parameter of GitLab\'s is the gate\'s', async (t) => {
  if (!requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const { seed, numRuns: runs } = propertyRun(t, 'GRAPHQL_MULTIPART', 2_000, `Rack ${oracle.release}`)
  let read = 0
  let withFields = 0
  await fc.assert(fc.asyncProperty(body, async (text) => {
    const bytes = Buffer.from(text, 'latin1')
    const answer = await oracle.ask({ method: 'POST', target: '/api/graphql', headers: [['Content-Type', CONTENT_TYPE]], body: bytes, params: true })
    const gate = readGraphqlParams(bytes, { method: 'POST', query: '', contentType: CONTENT_TYPE, bodyReadable: true })
    const rack = answer.post!
    if ('raised' in rack) return
    read++
    if (Object.keys(rack.params).length > 0) withFields++
    // The fields come first (Apollo's `operations` reading, when there is one, after them).
    const reading = gate.readings[0]!
    if (!hasFile(rack.params)) {
      assert.deepEqual(plain(reading), rack.params, `${JSON.stringify(text)}: Rack reads ${JSON.stringify(rack.params)}, the gate ${JSON.stringify(reading)}`)
      return
    }
    for (const [key, value] of Object.entries(rack.params)) {
      if (!isGraphqlPartName(key) || hasFile(value)) continue
      assert.deepEqual(plain(reading[key]), value, `${JSON.stringify(text)}: Rack reads ${key} ${JSON.stringify(value)}, the gate ${JSON.stringify(reading[key])}`)
    }
  }), { seed, numRuns: runs })
  // The generator reaches what it is for: many bodies parse, and most of those give fields.
  assert.ok(read > runs / 5, `only ${read} of ${runs} bodies parsed in Rack`)
  assert.ok(withFields > read / 2, `only ${withFields} of ${read} parsed bodies had fields`)
})

test('bodies written as curl and browsers write them are read whole and never doubtful', async () => {
  const plainPart = fc.record({
    name: fc.constantFrom(...NAMES, 'map', '0', 'file'),
    file: fc.boolean(),
    type: fc.constantFrom(null, 'application/json', 'image/png', 'text/plain;charset=UTF-8'),
    value: fc.constantFrom(...VALUES.filter(v => !v.includes(B)), '\u0089PNG\r\n\u001a\n')
  })
  await fc.assert(fc.asyncProperty(fc.array(plainPart, { minLength: 1, maxLength: 5 }), async (parts) => {
    const text = parts.map(p => `--${B}\r\nContent-Disposition: form-data; name="${p.name}"${p.file ? '; filename="a.png"' : ''}\r\n` +
      `${p.type === null ? '' : `Content-Type: ${p.type}\r\n`}\r\n${p.value}\r\n`).join('') + `--${B}--\r\n`
    const params = readGraphqlParams(Buffer.from(text, 'latin1'), { method: 'POST', query: '', contentType: CONTENT_TYPE, bodyReadable: true })
    assert.deepEqual(params.doubtful, [], text)
  }), { numRuns: 500 })
})

test('a plain part is named by its header block only: a value that spells a header is no doubt', () => {
  const text = `--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\nContent-ID: query\r\nname=query\r\n--${B}--\r\n`
  const params = readGraphqlParams(Buffer.from(text, 'latin1'), { method: 'POST', query: '', contentType: CONTENT_TYPE, bodyReadable: true })
  assert.deepEqual(params.doubtful, [])
  assert.equal(params.readings[0]!.a, 'Content-ID: query\r\nname=query')
})

test('a `map` key names every part Rack files under it: the name\'s bytes as UTF-8, at normalize_params\' top-level key', async (t) => {
  if (!requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  // Every name of up to four of these characters: white space, brackets, a letter, a letter
  // outside ASCII (two bytes).
  const alphabet = [' ', '\t', '[', ']', 'p', 'é']
  let names = ['']
  const all: string[] = []
  for (let length = 1; length <= 4; length++) {
    names = names.flatMap(n => alphabet.map(c => n + c))
    all.push(...names)
  }
  let filed = 0
  for (const name of all) {
    const bytes = Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\ngid://gitlab/Project/300\r\n--${B}--\r\n`)
    const rack = (await oracle.ask({ method: 'POST', target: '/api/graphql', headers: [['Content-Type', CONTENT_TYPE]], body: bytes, params: true })).post!
    if ('raised' in rack) continue
    // The part's name as the gate reads it from the header: one character a byte.
    const header = Buffer.from(name).toString('latin1')
    for (const key of Object.keys(rack.params)) {
      filed++
      assert.ok(mapKeyMatcher([key])(header), `Rack files a part named ${JSON.stringify(name)} under ${JSON.stringify(key)}, which the gate did not take the key to name`)
    }
  }
  assert.ok(filed > all.length / 2, `only ${filed} of ${all.length} names were filed by Rack`)
})
