// How a multipart body is framed, read by Rails directly (Rack 2.2) and behind Workhorse (Go's
// mime/multipart, then Rack over the body Workhorse writes again): preambles and epilogues, parts
// after the closing delimiter, delimiter lines with white space, `--` or other bytes after them
// or no line end before them, LF-only and lone CR line ends, parts without a Content-Disposition
// (named by Content-ID or Content-Type to Rack, dropped by Workhorse), folded header lines and
// transfer encodings. Go and Rack frame such bodies differently; wherever the gate lets one
// through, every job token and method either reading gives Rails is one the gate read.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { scanMultipart } from '../../src/identity/multipart.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { goMultipart, goUnavailable } from '../helpers/go-multipart.ts'
import { prng } from '../helpers/prng.ts'
import { startRackOracle } from '../helpers/rack-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { requireRack } from './rack-available.ts'

const B = 'framing-boundary'
const TOKEN = 'glcbt-64_framingjobtoken00000000'
const NAMES = ['private_token', 'job_token', 'access_token', 'token', '_method']

function generate (seed: number): Buffer {
  const random = prng(seed)
  const pick = (n: number): number => Math.floor(random() * n)
  // Mostly CRLF, so that Rack reads many of the bodies.
  const eol = (): string => pick(8) === 0 ? ['\n', '\r', '\r\n \r\n'][pick(3)]! : '\r\n'
  const delimiter = (): string => `${pick(8) === 0 ? '' : eol()}--${B}${['', '', '', ' ', '\t', '  ', ' \t', '--', '-- ', 'x', '-'][pick(11)]!}${eol()}`
  const head = (name: string): string => {
    const lines = [[
      `Content-Disposition: form-data; name="${name}"`, `Content-Disposition: form-data;\r\n name="${name}"`, `Content-Disposition: form-data;\n\tname=${name}`,
      `Content-ID: ${name}`, `Content-Type: ${name}`, `content-disposition:form-data;name=${name}`, `Content-Disposition: form-data; name="${name}"; filename="f"`
    ][pick(7)]!]
    if (pick(4) === 0) lines.splice(pick(2), 0, ['Content-Transfer-Encoding: quoted-printable', 'Content-Transfer-Encoding: 7bit', 'X-A: b', 'Content-Type: text/plain', ' folded'][pick(5)]!)
    return lines.map(l => l + eol()).join('')
  }
  const value = (name: string): string => name === '_method' ? ['DELETE', 'DEL=45TE', 'PUT'][pick(3)]! : [TOKEN, TOKEN.replace('-', '=2D'), TOKEN + ' '][pick(3)]!
  let text = pick(3) === 0 ? ['preamble', `--${B}x`, `--${B}--`, '\r\n', `x--${B}`][pick(5)]! : ''
  const parts = 1 + pick(3)
  for (let i = 0; i < parts; i++) {
    const name = pick(3) === 0 ? 'other' : NAMES[pick(NAMES.length)]!
    text += (i === 0 && text === '' ? `--${B}${eol()}` : delimiter()) + head(name) + eol() + value(name)
  }
  text += `${eol()}--${B}--${['', '\r\n', '\r\nepilogue', ' \r\n', '--'][pick(5)]!}`
  if (pick(4) === 0) {
    const name = NAMES[pick(NAMES.length)]!
    text += `${eol()}--${B}${eol()}${head(name)}${eol()}${value(name)}${eol()}--${B}--\r\n`
  }
  return Buffer.from(text, 'latin1')
}

test('every job token or method Rails reads from a body framed any way, directly or behind Workhorse, is one the gate read', async t => {
  if (!requireTool(t, goUnavailable()) || !requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const type = `multipart/form-data; boundary=${B}`
  const bodies = Array.from({ length: 2000 }, (_, i) => generate(0xf4a3e + i))
  const go = goMultipart(bodies.map(body => ({ boundary: B, body, contentType: type })))
  const failures: string[] = []
  const counts = { read: 0, refused: 0, workhorse: 0 }
  for (const [i, body] of bodies.entries()) {
    let scan
    try {
      scan = scanMultipart(body, B)
    } catch (err) {
      if (!(err instanceof IdentityError)) throw err
      counts.refused++
      continue
    }
    const readings = [{ via: 'Rack', body }]
    if (go[i]!.error === undefined) readings.push({ via: 'Workhorse', body: go[i]!.rewritten })
    for (const reading of readings) {
      const rails = await oracle.ask({ method: 'POST', target: '/api/v4/projects/1/packages/pypi', headers: [['Content-Type', type]], body: reading.body })
      for (const [where, v] of rails.creds) {
        if (!where.startsWith('body:') || v !== TOKEN) continue
        counts.read++
        if (reading.via === 'Workhorse') counts.workhorse++
        if (!scan.credentials.some(c => c.secret === v)) failures.push(`${reading.via}: ${where} not read by the gate: ${JSON.stringify(body.toString('latin1'))}`)
      }
      if (rails.method !== 'POST') {
        counts.read++
        const m = scan.methodParam
        if (!(m.kind === 'uncertain' || (m.kind === 'present' && m.value.toUpperCase() === rails.method))) failures.push(`${reading.via}: routes ${rails.method}, the gate read ${JSON.stringify(m)}: ${JSON.stringify(body.toString('latin1'))}`)
      }
    }
  }
  t.diagnostic(`${bodies.length} bodies: ${counts.refused} refused; ${counts.read} tokens or methods Rails read, ${counts.workhorse} behind Workhorse`)
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} readings the gate missed`)
  assert.ok(counts.read > 300 && counts.workhorse > 50 && counts.refused > 50, JSON.stringify(counts))
})
