// The multipart guard reads each part's header block every way Rack 2, Rack 3 and Go could
// (readHead). Those readings are kept for the next ask of the same block (Go's and Rack 3's
// Content-Disposition, asked three times a block), and the Content-ID and Content-Type scans skip
// blocks without those names: about a third of the CPU of a body of many small parts. Nothing
// read changes: the readings as they were (test/identity/reference/multipart-head.ts) and as they
// are now agree on generated blocks, each asked in a generated order beside others, so that a
// reading kept for one block is never the answer for another.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { isFilePart, multipartHeaderNames, readHead } from '../../src/identity/multipart.ts'
import { propertyRun } from '../helpers/property-run.ts'
import { referenceHeadReading } from './reference/multipart-head.ts'

// Pieces of header blocks that Rack's and Go's readings treat specially: header names in any
// case, parameters, quotes and escapes, RFC 2231 forms, brackets, line ends and folds, Go's
// Unicode white space (UTF-8 bytes as latin1), padding past Rack 3's bound on a disposition.
const PIECES = [
  'Content-Disposition:', 'content-disposition: ', 'CONTENT-DISPOSITION:', 'Content-ID:', 'content-id: ', 'Content-Type: ', 'content-type:', 'X-Note: ', 'Content-Transfer-Encoding: ',
  ' form-data', 'form-data', 'attachment', ';', '; ', ' ', '\t', '=', '"', '\\', '\\"', ':', ',',
  'name=', ' name=', 'name="', 'NAME=', 'name*=', "name*=utf-8''", 'name*0=', 'name*1*=', 'filename=', 'filename="', 'filename*=', "filename*=utf-8''", "filename*=iso-8859-1''",
  'job_token', 'access_token', 'private_token', '_method', 'operations', 'f', 'a.bin', '0', '%3B', '%22', '%5B', '[', ']', '[]', '.',
  '\r\n', '\n', '\r', '\r\n ', '\r\n\t', '\xc2\xa0', '\xe2\x80\x80', '\v', '\f', '\x00', '\xff', 'x'.repeat(1600)
]

const block = fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 24 }).map(p => p.join('') + '\r\n')
// Whole lines as clients send them, some names repeated: the kept readings meet the same block again.
const usual = fc.tuple(fc.constantFrom('f', 'job_token', 'a;b', 'a"b', 'x[', 'private_token[x', 'x'.repeat(1500)), fc.constantFrom('', '; filename="a.bin"', "; filename*=utf-8''a", '; filename=""'), fc.constantFrom('', 'Content-Type: text/plain\r\n', 'Content-ID: job_token\r\n'))
  .map(([name, file, more]) => `Content-Disposition: form-data; name="${name.replace(/["\\]/g, '\\$&')}"${file}\r\n${more}`)

test('the readings of a header block are those of the reference, whatever was read before', t => {
  const { seed, numRuns } = propertyRun(t, 'HEAD_READINGS', 300)
  fc.assert(fc.property(fc.array(fc.oneof(block, usual), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 16 }), (heads, order) => {
    // Each block once, then again in a generated order.
    for (const i of [...heads.keys(), ...order.map(n => n % heads.length)]) {
      const head = heads[i]!
      const reference = referenceHeadReading(head)
      const reading = readHead(head)
      assert.deepEqual({ names: [...reading.names], file: reading.file, renamed: reading.renamed }, reference, JSON.stringify(head))
      assert.deepEqual(multipartHeaderNames(head), reference.names)
      assert.equal(isFilePart(head), reference.file)
    }
  }), { seed, numRuns })
})
