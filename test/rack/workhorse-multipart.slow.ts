// Go's mime/multipart, which Workhorse reads its upload routes' bodies with, as the oracle of what
// Rails behind Workhorse reads: NextPart() decodes a part sent as quoted-printable and hides its
// Content-Transfer-Encoding, and Workhorse writes the decoded field again for Rails. Generated
// bodies carry a credential or `_method` part under every spelling of that header; wherever the
// gate lets a body through, each such field Go reads must be one the gate read, with the value
// Go reads. Without Go (Debian's golang-go) the test fails under CI=true (.ci/run installs it).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createBodyScanner } from '../../src/identity/body-scan.ts'
import { scanMultipart } from '../../src/identity/multipart.ts'
import { isCredentialParam, isMethodOverrideParam, type MethodParam } from '../../src/identity/credentials.ts'
import { IdentityError } from '../../src/identity/types.ts'
import { goMultipart, goUnavailable } from '../helpers/go-multipart.ts'
import { prng } from '../helpers/prng.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { startRackOracle } from '../helpers/rack-oracle.ts'
import { requireRack } from './rack-available.ts'

const BOUNDARY = 'workhorse-oracle-boundary'
const TOKEN = 'glcbt-64_toolsjobrunning00000000'
const NAMES = ['access_token', 'bearer_token', 'token', 'private_token', 'job_token', 'job_token[]', '_method']
const VALUES = ['quoted-printable', 'Quoted-Printable', 'QUOTED-PRINTABLE', '  quoted-printable  ', 'quoted-printable; x=y', '7bit', '8BIT', 'binary', 'base64', '']
const HEADER_NAMES = ['Content-Transfer-Encoding', 'content-transfer-encoding', 'CONTENT-TRANSFER-ENCODING']

/** A value written as quoted-printable one of the ways Go's reader decodes. */
function encode (value: string, pick: (n: number) => number): string {
  let out = ''
  for (const c of value) {
    const roll = pick(6)
    if (roll === 0) out += '=' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')
    else if (roll === 1) out += '=' + c.charCodeAt(0).toString(16).toLowerCase().padStart(2, '0')
    else out += c
    if (pick(12) === 0) out += pick(2) === 0 ? '=\r\n' : '=\n'
  }
  return out
}

/** An upload of the target part and a filler part, in an order `pick` chooses. */
function uploadBody (headers: readonly string[], value: string, filler: string, pick: (n: number) => number): { body: Buffer, label: string } {
  const target = `--${BOUNDARY}\r\n${headers.join('\r\n')}\r\n\r\n${value}\r\n`
  const text = (pick(2) === 0 ? filler + target : target + filler) + `--${BOUNDARY}--\r\n`
  return { body: Buffer.from(text, 'latin1'), label: JSON.stringify(text) }
}

/** The gate's reading of a body, or null where it refuses it. */
function gateScan (body: Buffer): ReturnType<typeof scanMultipart> | null {
  try {
    return scanMultipart(body, BOUNDARY)
  } catch (err) {
    if (!(err instanceof IdentityError)) throw err
    return null
  }
}

/** Whether the gate's `_method` reading is `value` (in any case, where `anyCase`), or uncertain (refused as a route). */
function methodRead (m: MethodParam, value: string, anyCase = false): boolean {
  return m.kind === 'uncertain' || (m.kind === 'present' && (anyCase ? m.value.toUpperCase() : m.value) === value)
}

function generate (seed: number): { body: Buffer, label: string } {
  const random = prng(seed)
  const pick = (n: number): number => Math.floor(random() * n)
  const name = NAMES[pick(NAMES.length)]!
  const plain = name === '_method' ? ['DELETE', 'PUT', 'GET', 'patch'][pick(4)]! : TOKEN
  const value = pick(4) === 0 ? plain : encode(plain, pick)
  const cte: string[] = []
  const header = (): string => `${HEADER_NAMES[pick(HEADER_NAMES.length)]!}:${pick(2) === 0 ? ' ' : ''}${VALUES[pick(VALUES.length)]!}`
  switch (pick(5)) {
    case 0: break
    case 1: cte.push(header()); break
    case 2: cte.push(`${HEADER_NAMES[pick(HEADER_NAMES.length)]!}:`, ` ${VALUES[pick(5)]!}`); break
    case 3: cte.push(header(), header()); break
    default: cte.push(`Content-Transfer-Encoding: ${VALUES[pick(5)]!}`)
  }
  const disposition = `Content-Disposition: form-data; name="${name}"`
  const headers = pick(2) === 0 ? [disposition, ...cte] : [...cte, disposition]
  const filler = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n${pick(3) === 0 ? 'Content-Transfer-Encoding: quoted-printable\r\n' : ''}\r\npkg=2D1\r\n`
  return uploadBody(headers, value, filler, pick)
}

test('every credential or _method field Workhorse hands Rails is one the gate read, or the body is refused', t => {
  if (!requireTool(t, goUnavailable())) return
  const cases = Array.from({ length: 2000 }, (_, i) => generate(0x5eed + i))
  const readings = goMultipart(cases.map(c => ({ boundary: BOUNDARY, body: c.body })))
  const failures: string[] = []
  let decoded = 0
  let refused = 0
  cases.forEach((c, i) => {
    const go = readings[i]!
    assert.equal(go.error, undefined, `Go read ${c.label}: ${go.error}`)
    const scan = gateScan(c.body)
    if (scan === null) {
      refused++
      return
    }
    for (const part of go.parts) {
      if (part.file !== '' || part.name === '') continue
      const value = part.value.toString('utf8')
      if (!c.body.includes(part.value)) decoded++
      if (isMethodOverrideParam(part.name)) {
        if (!methodRead(scan.methodParam, value)) failures.push(`_method ${JSON.stringify(value)} read as ${JSON.stringify(scan.methodParam)}: ${c.label}`)
      } else if (isCredentialParam(part.name) && value !== '' && !scan.credentials.some(cr => cr.secret === value)) {
        failures.push(`${part.name}=${JSON.stringify(value)} not read by the gate: ${c.label}`)
      }
    }
  })
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} bodies Workhorse reads otherwise than the gate`)
  // The generator reaches the cases that matter: fields Go decoded, and bodies the gate refused.
  assert.ok(decoded > 100, `only ${decoded} fields decoded by Go`)
  assert.ok(refused > 100 && refused < cases.length - 100, `${refused} of ${cases.length} refused`)
})

// The part's name as Workhorse writes it again for Rails: mime.ParseMediaType's reading of its
// Content-Disposition. Generated headers spell a credential or `_method` name every way that
// reading takes (parameter names in any case, Unicode white space around `=` and after a value,
// quoted strings with escapes, RFC 5987 `name*=` and RFC 2231 `name*0=` sections, duplicates,
// other disposition types, a second Content-Disposition, folded lines). The value is no job token,
// so the gate must read it under the name Go gives it, not merely by its shape.
const PAT = 'glpat-oracle-value-000000000000'
/** Separators Go's parameter reading skips (ASCII and UTF-8 Unicode white space) and decoys it does not. */
const SPACES = ['', '', ' ', '\t', '\v', '\f', '\xc2\xa0', '\xc2\x85', '\xe3\x80\x80', '\xe2\x80\x80', '\xe2\x80\x8a', '\xe2\x80\xaf', '\xe2\x80\xa8', '\xe1\x9a\x80', '\xe2\x81\x9f', '\xc2\xa1', '\r']
const PARAM_NAMES = ['name', 'NAME', 'Name', 'nAmE']

function spellName (name: string, pick: (n: number) => number): string {
  const sp = (): string => SPACES[pick(SPACES.length)]!
  const key = PARAM_NAMES[pick(PARAM_NAMES.length)]!
  const pct = (s: string): string => [...s].map(c => pick(3) === 0 ? '%' + c.charCodeAt(0).toString(16).padStart(2, '0')[pick(2) === 0 ? 'toUpperCase' : 'toLowerCase']() : c).join('')
  switch (pick(6)) {
    case 0: return `${key}${sp()}=${sp()}${name}${sp()}`
    case 1: return `${key}${sp()}=${sp()}"${[...name].map(c => '[]_'.includes(c) && pick(2) === 0 ? '\\' + c : c).join('')}"${sp()}`
    case 2: return `${key}*${sp()}=${sp()}${['UTF-8', 'utf-8', 'us-ascii', 'ISO-8859-1', ''][pick(5)]!}'${pick(2) === 0 ? 'en' : ''}'${pct(name)}${sp()}`
    default: {
      // RFC 2231 sections, some encoded, in order or not.
      const cuts = [0, ...Array.from({ length: pick(3) + 1 }, () => pick(name.length + 1)).sort((a, b) => a - b), name.length]
      const sections: string[] = []
      for (let i = 0; i + 1 < cuts.length; i++) {
        const piece = name.slice(cuts[i], cuts[i + 1])
        const encoded = pick(2) === 0
        const value = encoded ? (i === 0 ? "utf-8''" : '') + pct(piece) : (pick(2) === 0 ? `"${piece}"` : piece)
        sections.push(`${key}*${i}${encoded ? '*' : ''}${sp()}=${sp()}${value}`)
      }
      if (pick(4) === 0) sections.reverse()
      return sections.join(`;${sp()}`)
    }
  }
}

function hideName (name: string, pick: (n: number) => number): string {
  const key = ['z', 'zz', 'Z', 'x-y', 'o'][pick(5)]!
  const pct = (text: string): string => [...text].map(c => /[A-Za-z0-9]/.test(c) && pick(2) === 0 ? c : '%' + c.charCodeAt(0).toString(16).padStart(2, '0')[pick(2) === 0 ? 'toUpperCase' : 'toLowerCase']()).join('')
  const hidden = `a;${pick(2) === 0 ? ' ' : ''}name=${name}`
  // Go lowers the charset rune by rune: `us-asc\u0130i` (UTF-8, in a quoted value) is us-ascii.
  const dotted = pick(3) === 0
  switch (pick(3)) {
    case 0: return dotted ? `${key}*="us-asc\xc4\xb0i''${pct(hidden)}"` : `${key}*=utf-8''${pct(hidden)}`
    case 1: return `${key}="${hidden.replace(/[;=[\]]/g, c => pick(3) === 0 ? c : '\\' + c)}"`
    default: {
      const cut = 1 + pick(hidden.length - 1)
      const first = dotted ? `"US-ASC\xc4\xb0I''${pct(hidden.slice(0, cut))}"` : `UTF-8''${pct(hidden.slice(0, cut))}`
      return `${key}*0*=${first}; ${key}*1*=${pct(hidden.slice(cut))}`
    }
  }
}

function generateNamed (seed: number): { body: Buffer, label: string } {
  const random = prng(seed)
  const pick = (n: number): number => Math.floor(random() * n)
  const name = NAMES[pick(NAMES.length)]!
  const value = name === '_method' ? 'DELETE' : PAT
  const type = ['form-data', 'FORM-DATA', 'attachment', 'inline', '', 'form-data/x', '\xe2\x84\xaa', '\xc4\xb0nline'][pick(8)]!
  // Either the name itself, or `name=version` and a parameter sorted after it whose value Go
  // decodes to `;name=<name>` (which Workhorse writes again quoted, and Rack 2.2 reads).
  const params = pick(3) === 0 ? ['name=version', hideName(name, pick)] : [spellName(name, pick)]
  if (pick(4) === 0) params.splice(pick(2), 0, ['name=other', 'name="other"', 'filename=""', 'x=";name=y"', `${PARAM_NAMES[pick(4)]!}=${name}`][pick(5)]!)
  const sp = (): string => SPACES[pick(SPACES.length)]!
  let disposition = `${pick(4) === 0 ? 'content-disposition' : 'Content-Disposition'}:${pick(4) === 0 ? '' : ' '}${type}${sp()}${params.map(p => `;${sp()}${p}`).join('')}`
  if (pick(6) === 0) disposition = disposition.replace(/; ?/, ';\r\n ')
  const headers = [disposition]
  if (pick(5) === 0) headers.splice(pick(2), 0, 'Content-Disposition: form-data; name="other"')
  if (pick(5) === 0) headers.push('Content-Type: text/plain; charset=utf-8')
  return uploadBody(headers, value, `--${BOUNDARY}\r\nContent-Disposition: form-data; name="name"\r\n\r\npkg\r\n`, pick)
}

test('every credential or _method name Go reads in a Content-Disposition is one the gate read, or the body is refused', t => {
  if (!requireTool(t, goUnavailable())) return
  const cases = Array.from({ length: 3000 }, (_, i) => generateNamed(0x9a3e + i))
  const readings = goMultipart(cases.map(c => ({ boundary: BOUNDARY, body: c.body })))
  const failures: string[] = []
  let named = 0
  cases.forEach((c, i) => {
    const go = readings[i]!
    const scan = gateScan(c.body)
    if (scan === null) return
    for (const part of go.parts) {
      if (part.file !== '' || part.name === '') continue
      const value = part.value.toString('utf8')
      if (isMethodOverrideParam(part.name)) {
        named++
        if (!methodRead(scan.methodParam, value)) failures.push(`_method ${JSON.stringify(value)} read as ${JSON.stringify(scan.methodParam)}: ${c.label}`)
      } else if (isCredentialParam(part.name)) {
        named++
        if (!scan.credentials.some(cr => cr.secret === value && cr.where !== 'body:*')) failures.push(`${JSON.stringify(part.name)}=${JSON.stringify(value)} not read by the gate: ${c.label}`)
      }
    }
  })
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} bodies whose names Workhorse reads otherwise than the gate`)
  // The generator reaches the names Go reads (many spellings are no parameter to Go, by design).
  assert.ok(named > 500, `only ${named} credential or _method names read by Go`)
})

test('Rails, reading with Rack the body Workhorse writes again, finds no credential or _method the gate did not read', async t => {
  if (!requireTool(t, goUnavailable()) || !requireRack(t)) return
  const oracle = startRackOracle()
  t.after(() => oracle.close())
  const cases = Array.from({ length: 1500 }, (_, i) => generateNamed(0x71e + i))
  const readings = goMultipart(cases.map(c => ({ boundary: BOUNDARY, body: c.body })))
  const failures: string[] = []
  let read = 0
  for (const [i, c] of cases.entries()) {
    const go = readings[i]!
    if (go.error !== undefined) continue
    const scan = gateScan(c.body)
    if (scan === null) continue
    const rails = await oracle.ask({ method: 'POST', target: '/api/v4/projects/200/packages/pypi', headers: [['Content-Type', `multipart/form-data; boundary=${BOUNDARY}`]], body: go.rewritten })
    for (const [where, value] of rails.creds) {
      if (!where.startsWith('body:')) continue
      read++
      if (!scan.credentials.some(cr => cr.secret === value && cr.where !== 'body:*')) failures.push(`Rails reads ${where}=${JSON.stringify(value)}, the gate did not: ${c.label}`)
    }
    if (rails.method !== 'POST') {
      read++
      if (!methodRead(scan.methodParam, rails.method, true)) failures.push(`Rails routes ${rails.method}, the gate read ${JSON.stringify(scan.methodParam)}: ${c.label}`)
    }
  }
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} bodies Rails reads behind Workhorse otherwise than the gate`)
  assert.ok(read > 300, `only ${read} credentials or overrides read by Rails`)
})

// Whether Workhorse reads a body as multipart at all is Go's reading of its Content-Type: net/http's
// MultipartReader() takes what mime.ParseMediaType gives as multipart/form-data or multipart/mixed
// (with Unicode white space trimmed, the type lowered rune by rune), writes the parts again under a
// multipart/form-data of its own, and passes any other body to Rails unread. Generated types spell
// the media type and its boundary parameter every way one of the two parsers reads otherwise.
const TYPE_SPACES = ['\u00a0', '\u0085', '\u3000', '\u2000', '\u200a', '\u202f', '\u2028', '\u1680', '\u205f', '\u00a1']
const MEDIA_TYPES = ['multipart/form-data', 'MULTIPART/FORM-DATA', 'Multipart/Mixed', 'multipart/related', 'mult\u0130part/form-data', 'MULTIPART/M\u0130XED', 'multipart/form-data, text/plain', 'application/x-www-form-urlencoded', 'text/plain', '']
const BOUNDARY_PARAMS = [`boundary=${BOUNDARY}`, `boundary="${BOUNDARY}"`, `BOUNDARY=${BOUNDARY}`, `boundary*=utf-8''${BOUNDARY}`, `boundary*0=${BOUNDARY}`, `boundary = ${BOUNDARY}`, `charset=utf-8; boundary=${BOUNDARY}`, `boundary=${BOUNDARY}; charset=utf-8`]

function generateType (seed: number): string {
  const random = prng(seed)
  const pick = (n: number): number => Math.floor(random() * n)
  // Mostly ASCII, so that the types the gate reads are reached too.
  const sp = (): string => pick(6) === 0 ? TYPE_SPACES[pick(TYPE_SPACES.length)]! : ['', ' ', '\t'][pick(3)]!
  return `${sp()}${MEDIA_TYPES[pick(MEDIA_TYPES.length)]!}${sp()};${sp()}${BOUNDARY_PARAMS[pick(BOUNDARY_PARAMS.length)]!}${pick(4) === 0 ? ';' : ''}`
}

test('a Content-Type Workhorse reads a multipart body under is one the gate reads it under too, or refuses', t => {
  if (!requireTool(t, goUnavailable())) return
  const scanner = createBodyScanner()
  const body = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="access_token"\r\n\r\n${TOKEN}\r\n--${BOUNDARY}--\r\n`)
  const types = Array.from({ length: 1500 }, (_, i) => generateType(0x7e0 + i))
  const readings = goMultipart(types.map(contentType => ({ boundary: '', body, contentType })))
  const failures: string[] = []
  let read = 0
  let refused = 0
  types.forEach((type, i) => {
    // Go read no multipart there (Workhorse hands Rails the body as it came, and Rack's reading is
    // the gate's), or none under this boundary (Workhorse refuses the body).
    if (readings[i]!.error !== undefined || readings[i]!.parts.length === 0) return
    read++
    // Node reads a header one byte a character.
    const plan = scanner.plan({ 'content-type': Buffer.from(type, 'utf8').toString('latin1'), 'content-length': String(body.length) }, 'POST')
    if (plan.kind === 'rejected') refused++
    else if (!('boundary' in plan) || plan.boundary !== BOUNDARY) failures.push(`${JSON.stringify(type)}: ${JSON.stringify(plan)}`)
  })
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} Content-Types Workhorse reads a multipart body under and the gate does not`)
  assert.ok(read > 300 && refused > 100 && refused < read - 100, `${read} read as multipart by Go, ${refused} of them refused`)
})
