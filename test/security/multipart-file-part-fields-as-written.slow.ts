// Finding: for every file part the multipart guard, and the configuration API's GraphQL reader,
// read each of the eleven fields Workhorse writes in its place (`<name>.path`, `<name>.name`...)
// three ways (Rack 2, Rack 3 before and after folded lines), whatever the name: half the CPU of a
// body of many small file parts. 4,093 of them (340 KB, within every bound, no token needed) cost
// the gate 0.47 s of CPU on an upload route and 0.7 s at /api/graphql. A name without a quote, a
// backslash, a `;`, a CR or an LF is read as written every way, so its fields are no longer read
// (writtenFieldReadAsIs); the others are read as before. Nothing decided changes: every name the
// shortcut takes is one the three readings read as written, checked here over generated names, and
// one Debian's Rack 2.2 reads as written where Go writes it. The shortcut later took names holding a
// `;` not followed by `name=`, a quote or a backslash too (Go escapes both, Rack unescapes them).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writtenFieldReadAsIs, writtenFieldReadings } from '../../src/identity/multipart.ts'
import { goParseMediaType } from '../../src/identity/go-mime.ts'
import { goMultipart, goUnavailable } from '../helpers/go-multipart.ts'
import { prng } from '../helpers/prng.ts'
import { rackPartNames } from '../helpers/rack-oracle.ts'
import { requireTool } from '../helpers/require-tool.ts'
import { requireRack } from '../rack/rack-available.ts'

const KEYS = ['name', 'path', 'remote_url', 'remote_id', 'size', 'upload_duration', 'md5', 'sha1', 'sha256', 'sha512', 'gitlab-workhorse-upload']
// Pieces of names that Rack's readings treat specially, and characters outside ASCII (one a byte).
const PIECES = ['a', 'Z', '0', '.', '-', '_', ' ', '\t', ':', '=', '[', ']', '[]', "'", '%', '%3B', '*', '(', ')', '<', '>', ',', '/', '?', '\x00', '\v', '\f', '\xa0', '\xff',
  'name=', ' name=', 'filename=', 'name*=', 'Content-Disposition:', 'content-disposition: form-data', 'Content-ID: ', 'Content-Type: ', 'access_token', '_method',
  '"', '\\', ';', '\r', '\n', '\r\n', '\r\n\r\n']

test('a name the shortcut takes is read as written from every field Workhorse writes for it', () => {
  const random = prng(20261202)
  let taken = 0
  let readOtherwise = 0
  for (let i = 0; i < 20_000; i++) {
    // Mostly short names; some long enough to pass Rack 3's bound on a Content-Disposition.
    const length = 1 + Math.floor(random() * (i % 40 === 0 ? 400 : 10))
    let name = ''
    for (let j = 0; j < length; j++) name += PIECES[Math.floor(random() * PIECES.length)]!
    const asWritten = writtenFieldReadAsIs(name)
    for (const key of KEYS) {
      const written = `${name}.${key}`
      const others = writtenFieldReadings(written).filter(read => read !== written)
      if (asWritten) assert.deepEqual(others, [], JSON.stringify(written))
      else if (others.length > 0) readOtherwise++
    }
    if (asWritten) taken++
  }
  // Both kinds were generated, and the readings found names read otherwise among the rest.
  assert.ok(taken > 2000 && readOtherwise > 2000, `${taken} names taken, ${readOtherwise} fields read otherwise`)
})

test('the names Go decodes that Rack reads otherwise are not taken; a quote or a backslash, escaped, is read back', () => {
  for (const name of ['x; name=access_token ', ';name=access_token ', 'x;\tNAME=access_token', 'x\r\nContent-ID: access_token\r\n\r\n', 'x\n; name=access_token ', 'x\ry', 'x'.repeat(1494)]) {
    assert.equal(writtenFieldReadAsIs(name), false, JSON.stringify(name))
  }
  // Rack reads the first of them as `access_token`: the readings the shortcut skips see it.
  assert.ok(writtenFieldReadings('x; name=access_token .name').includes('access_token'))
  for (const name of ['a"b', 'a\\b', 'a\\', '"; x', 'a;b', 'x'.repeat(1493)]) {
    assert.equal(writtenFieldReadAsIs(name), true, JSON.stringify(name))
    assert.deepEqual(writtenFieldReadings(`${name}.name`), Array(3).fill(`${name}.name`))
  }
})

test('Rack reads as written every field Go writes for a file part whose name the shortcut takes', t => {
  if (!requireTool(t, goUnavailable()) || !requireRack(t)) return
  // Go reads the client's part and writes its fields (test/helpers/go_multipart.go); Debian's Rack
  // reads them. Names of the pieces above, bytes outside ASCII and invalid UTF-8 among them, up
  // to the longest the shortcut takes.
  const boundary = 'fields-as-written-boundary'
  const random = prng(20261203)
  const names: string[] = []
  while (names.length < 2000) {
    const length = 1 + Math.floor(random() * (names.length % 50 === 0 ? 600 : 12))
    let name = ''
    for (let j = 0; j < length; j++) name += PIECES[Math.floor(random() * PIECES.length)]!
    if (writtenFieldReadAsIs(name) && !name.includes(`--${boundary}`)) names.push(name)
  }
  names.push('x'.repeat(1493), ` ${'\xff'.repeat(1492)}`)
  const bodies = names.map(name => ({
    boundary,
    body: Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name.replace(/["\\]/g, '\\$&')}"; filename="f.bin"\r\n\r\nv\r\n--${boundary}--\r\n`, 'latin1')
  }))
  const go = goMultipart(bodies)
  const rack = rackPartNames(go.map(g => ({ boundary, body: g.rewritten })))
  let compared = 0
  for (const [i, name] of names.entries()) {
    // The shortcut is asked of the gate's reading of the name as Go reads it (white space trimmed,
    // escapes decoded), latin1; the oracle's Go answers its name as UTF-8 text.
    const goName = goParseMediaType(`form-data; name="${name.replace(/["\\]/g, '\\$&')}"; filename="f.bin"`)?.params.get('name')
    if (go[i]!.error !== undefined || goName === undefined || !writtenFieldReadAsIs(goName)) continue
    const oracleName = go[i]!.parts[0]?.name ?? ''
    if (!oracleName.includes('\ufffd')) assert.equal(Buffer.from(oracleName, 'utf8').toString('latin1'), goName, JSON.stringify(name))
    assert.deepEqual([...rack[i]!].sort(), KEYS.map(key => `${goName}.${key}`).sort(), JSON.stringify(name))
    compared++
  }
  assert.ok(compared > 1900, `${compared} names compared`)
})
