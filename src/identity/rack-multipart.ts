// A whole multipart body read as Rack 2.2 reads it, for parameters the gate must read exactly as
// GitLab does (GraphQL's query, variables and operationName, the tokens beside them), and the
// parts that another parser could read differently.
//
// Rack 2.2 (rack/multipart/parser.rb), which GitLab's Rails runs, in short:
// - a delimiter is a LINE that is `--boundary` (or `--boundary--`) once Ruby's strip has taken
//   white space and NUL off both ends; lines before the first one are skipped;
// - a part's header block runs to the first CRLF CRLF; its name is Content-Disposition's `name`,
//   else Content-ID, else `"#{Content-Type}[]"` (rack2PartHead);
// - its value ends at the first `(CRLF)?--boundary(CRLF|--)` anywhere, even mid-line; then two
//   bytes are skipped (the CRLF, or without one the delimiter's own `--`, so that the lines after
//   are skipped up to the next delimiter line), and `--boundary--` ends the body;
// - a body that ends in a header block or a value, or has no delimiter, raises: GitLab answers
//   400 and runs nothing.
// Go's mime/multipart (Workhorse) and Rack 3 frame and name some parts differently (see
// multipart.ts): doubtfulPartNames lists what any of them could call a part that is not written
// the one way they all read alike, so that a caller can refuse a body whose doubtful parts could
// carry a name it reads. Checked against Rack itself: test/rack/graphql-multipart.slow.ts.

import { isFilePart, multipartHeaderNames, rack2PartHead, rubyStrip } from './multipart.ts'

/** One parameter of a multipart body: a field's value, or null for an uploaded file. */
export interface MultipartField {
  readonly name: string
  readonly value: string | null
}

/**
 * The parts of a whole multipart body as Rack 2.2 parses them, in order (file inputs left empty
 * give none), or null where Rack raises. Values are latin1 text (one character per byte).
 */
export function rackMultipartFields (body: Buffer, boundary: string): MultipartField[] | null {
  if (body.length === 0) return []
  const text = body.toString('latin1')
  const delimiter = '--' + boundary
  const closing = delimiter + '--'
  let pos = 0

  // consume_boundary: whole lines (through LF, or to the end) until one strips to a delimiter.
  const consume = (): 'boundary' | 'end' | null => {
    for (;;) {
      const lf = text.indexOf('\n', pos)
      const lineEnd = lf === -1 ? text.length : lf + 1
      const line = rubyStrip(text.slice(pos, lineEnd))
      pos = lineEnd
      if (line === delimiter) return 'boundary'
      if (line === closing) return 'end'
      if (pos >= text.length) return null
    }
  }

  const first = consume()
  if (first === null) return null
  // A body that is only the closing delimiter (and CRLF) is an empty form.
  if (first === 'end' && pos === boundary.length + 6 && pos >= text.length) return []
  const fields: MultipartField[] = []
  for (;;) {
    const headEnd = text.indexOf('\r\n\r\n', pos)
    if (headEnd === -1) return null
    const head = rack2PartHead(text.slice(pos, headEnd + 2))
    pos = headEnd + 4
    const at = valueEnd(text, delimiter, pos)
    if (at === -1) return null
    const value = text.slice(pos, at)
    if (!head.skipped) fields.push({ name: head.name, value: head.file ? null : value })
    pos += value.length + 2
    const token = consume()
    if (token === 'end' || (pos >= text.length && token !== 'boundary')) return fields
  }
}

/** Where Rack's `/(?:\r\n)?--boundary(?:\r\n|--)/` first matches from `from`, or -1. */
function valueEnd (text: string, delimiter: string, from: number): number {
  for (let i = text.indexOf(delimiter, from); i !== -1; i = text.indexOf(delimiter, i + 1)) {
    const after = i + delimiter.length
    if (!text.startsWith('\r\n', after) && !text.startsWith('--', after)) continue
    return i - 2 >= from && text.startsWith('\r\n', i - 2) ? i - 2 : i
  }
  return -1
}

// The one way of writing a part that Rack 2.2, Rack 3 and Go all read alike: after a delimiter
// at the start of a line, CRLF, CRLF-terminated header lines of Content-Disposition (form-data, a
// name, perhaps a filename, quoted without escapes or `;`: Rack 2 finds `name=` inside quotes
// after a `;`) and perhaps a plain Content-Type, an empty line, and the value up to CRLF and the
// next delimiter.
const SIMPLE_NAME = '(?:"[^"\\\\\\r\\n;]*"|[A-Za-z0-9_.-]+)'
const PLAIN_DISPOSITION = new RegExp(`^content-disposition:[ \\t]*form-data[ \\t]*;[ \\t]*name=${SIMPLE_NAME}(?:[ \\t]*;[ \\t]*filename=${SIMPLE_NAME})?[ \\t]*$`, 'i')
const PLAIN_CONTENT_TYPE = /^content-type:[ \t]*[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(?:[ \t]*;[ \t]*charset="?utf-8"?)?[ \t]*$/i
/** Longest header block looked at: the identity stage's multipart guard refuses longer ones. */
const MAX_HEAD = 16 * 1024

function plainPart (piece: string, precededByLine: boolean, followed: boolean): boolean {
  if (!precededByLine || !followed || !piece.startsWith('\r\n') || !piece.endsWith('\r\n')) return false
  const headEnd = piece.indexOf('\r\n\r\n', 2)
  // The value's own CRLF before the next delimiter, apart from the header block's: without it Rack
  // ends the value at the delimiter and swallows the part after it (valueEnd, then two bytes skipped).
  if (headEnd === -1 || headEnd + 6 > piece.length) return false
  const lines = piece.slice(2, headEnd).split('\r\n')
  let dispositions = 0
  for (const line of lines) {
    if (line.includes('\r') || line.includes('\n')) return false
    if (PLAIN_DISPOSITION.test(line)) dispositions++
    else if (!PLAIN_CONTENT_TYPE.test(line)) return false
  }
  return dispositions === 1
}

/** A part of a body not written the one plain way: the names any parser could give it. */
export interface DoubtfulPart {
  readonly names: readonly string[]
  /** Whether every parser reads it as a file (isFilePart of its header block ended either way). */
  readonly file: boolean
}

/**
 * The names any parser could give the parts of a body that are not written the one plain way
 * (see above): every name multipartHeaderNames finds in each such part's first bytes, every
 * `--boundary` counting as a delimiter. A caller refuses the body when one of them could be a
 * name it reads.
 */
export function doubtfulPartNames (body: Buffer, boundary: string): string[] {
  return doubtfulParts(body, boundary).flatMap(part => part.names)
}

/** The parts doubtfulPartNames reads the names of, each with whether it is a file to every parser. */
export function doubtfulParts (body: Buffer, boundary: string): DoubtfulPart[] {
  const text = body.toString('latin1')
  const delimiter = '--' + boundary
  const parts: DoubtfulPart[] = []
  for (let at = text.indexOf(delimiter); at !== -1;) {
    const start = at + delimiter.length
    const next = text.indexOf(delimiter, start)
    const piece = text.slice(start, next === -1 ? text.length : next)
    const lineBefore = at === 0 || text.startsWith('\r\n', at - 2)
    const lineAfter = next !== -1 && (text.startsWith('\r\n', next + delimiter.length) || text.startsWith('--', next + delimiter.length))
    at = next
    if (piece.startsWith('--')) continue
    // A plain part has one name, its disposition's, to every parser (a plain Content-Type, Rack's
    // name of a part without one, is `type/subtype`: no parameter name). Any other part: every
    // name a parser could find in its first bytes, value or not, as the header block's end differs.
    if (plainPart(piece, lineBefore, lineAfter)) continue
    const head = piece.slice(0, MAX_HEAD)
    const names = multipartHeaderNames(head)
    if (names.length > 0) parts.push({ names, file: fileToAll(head) })
  }
  return parts
}

/** Whether a part's header block (after its delimiter) makes it a file however its end is found. */
function fileToAll (head: string): boolean {
  const rack = head.indexOf('\r\n\r\n')
  const go = /\n\r?\n/.exec(head)
  if (rack === -1 || go === null) return false
  return isFilePart(head.slice(0, rack + 2)) && isFilePart(head.slice(0, go.index + 1))
}
