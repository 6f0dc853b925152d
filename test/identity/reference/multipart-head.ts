// The header block readings of src/identity/multipart.ts as they were before the readings one
// block asks several times over were kept (lastAnswer), the Content-ID and Content-Type scans
// skipped in blocks without those names, and Workhorse's fields read Rack's ways for fewer names
// (writtenFieldReadAsIs here still reads every name holding a quote, a backslash or a `;`): the
// reference the current ones are checked against (test/identity/multipart-head-readings.test.ts).
// Not used by the gate.

import { isCredentialParam, isMethodOverrideParam } from '../../../src/identity/credentials.ts'
import { trimEnds } from '../../../src/text.ts'
import { goFormatMediaType, goParseMediaType } from '../../../src/identity/go-mime.ts'
// The readings those changes left as they were are the gate's own.
import { rack2ContentTypes, rack2PartHead, rack3OldDisposition, rubyStrip } from '../../../src/identity/multipart.ts'

/** The reading a multipart guard makes of a header block: its names, whether it is a file, and whether Workhorse's fields for it are read under another name. */
export function referenceHeadReading (head: string): { readonly names: string[], readonly file: boolean, readonly renamed: boolean } {
  return { ...partNames(head), file: isFilePart(head) }
}

function goNormalizedDisposition (value: string): string | null {
  const parsed = goParseMediaType(value)
  if (parsed === null || (parsed.params.get('name') ?? '') === '') return null
  return goFormatMediaType(parsed.type, parsed.params)
}

/**
 * A header block as Workhorse writes it again for Rails: Go's textproto unfolds continuation
 * lines with a space and trims values; each header is then written `Name: value\r\n`.
 */
function goHead (block: string): string {
  const lines: string[] = []
  for (const raw of block.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (line === '') continue
    if ((line[0] === ' ' || line[0] === '\t') && lines.length > 0) lines[lines.length - 1] += ' ' + line.trim()
    else lines.push(line)
  }
  return lines.map(l => {
    const colon = l.indexOf(':')
    return colon === -1 ? `${l}\r\n` : `${l.slice(0, colon)}: ${trimEnds(l.slice(colon + 1), ' \t')}\r\n`
  }).join('')
}

// ---------------------------------------------------------------------------------------------
// Reading a part's header block as Rack 2.2, Rack 3 and Go do. Rack's regular expressions are
// ported as written (rack/multipart.rb, rack/multipart/parser.rb), with Ruby's semantics spelled
// out: `\s` is [ \t\n\v\f\r], `.` is anything but \n, `^`/`$` are line anchors, and a regexp
// embedded in another keeps its own flags (DISPPARM is case-sensitive inside the /i RFC2183).

const WS = '[ \\t\\n\\v\\f\\r]'
const BOL = '(?:^|(?<=\\n))'
const EOL_ = '(?=\\n|$)'
/** An ASCII word matched case-insensitively, alone. */
const ci = (word: string): string => word.replace(/[a-z]/gi, c => `[${c.toLowerCase()}${c.toUpperCase()}]`)
const TOKEN = '[^ \\t\\n\\v\\f\\r()<>,;:\\\\"\\/\\[\\]?=]+'
const VALUE = `(?:"(?:\\\\"|[^"])*"|${TOKEN})`
const CONDISP = `${ci('Content-Disposition')}:${WS}*${TOKEN}${WS}*`
const ATTRIBUTE_CHAR = '[^ \\x00-\\x1f\\x7f)(><@,;:\\\\"/\\[\\]?=\'*%]'
const EXTENDED_OTHER_VALUE = `(?:%[0-9a-fA-F]{2}|${ATTRIBUTE_CHAR})`
const REGULAR_PARAMETER = `(${ATTRIBUTE_CHAR}+(?:\\*[0-9]+)?)=(${VALUE})`
const EXTENDED_PARAMETER = `(?:(${ATTRIBUTE_CHAR}+(?:\\*0)?\\*)=([a-zA-Z0-9\\-]*'[a-zA-Z0-9\\-]*'${EXTENDED_OTHER_VALUE}*)|(${ATTRIBUTE_CHAR}+\\*[1-9][0-9]*\\*)=(${EXTENDED_OTHER_VALUE}*))`
const DISPPARM = `;${WS}*(?:${REGULAR_PARAMETER}|${EXTENDED_PARAMETER})${WS}*`
const RACK2_RFC2183 = new RegExp(`${BOL}${CONDISP}(?:${DISPPARM})+${EOL_}`)
const RACK2_DISPPARM = new RegExp(DISPPARM, 'g')
// CONDISP's token taken whole (a lookahead and a back-reference make it possessive): `[^\\n]*`
// after it can take whatever a shorter token would have left, so the matches are the same, but
// a long token line no longer backtracks in quadratic time (8 KB: 100 ms before, found by fuzzing).
const RACK2_BROKEN = new RegExp(`${BOL}${ci('Content-Disposition')}:${WS}*(?=(${TOKEN}))\\1${WS}*[^\\n]*;${WS}*${ci('filename')}=(${VALUE})`)
const RACK2_NAME = new RegExp(`${ci('Content-Disposition')}:[^:]*;${WS}*${ci('name')}=(${VALUE})`)
const RACK2_CONTENT_ID = /Content-ID:[ \t\n\v\f\r]*([^\r\n]*)/gi
const RACK2_FIRST_CONTENT_ID = new RegExp(RACK2_CONTENT_ID.source, 'i')
const FWS_VALUE = '(?:[ \\t]+(?:\\r\\n[ \\t]+)?)?((?:[^\\r\\n]|\\r\\n[ \\t])*)'
const RACK3_FOLDED_DISPOSITION = new RegExp(`${BOL}${ci('Content-Disposition')}:${FWS_VALUE}`)
const RACK3_FOLDED_CONTENT_ID = new RegExp(`${BOL}${ci('Content-ID')}:${FWS_VALUE}`, 'g')
const RACK3_FOLDED_CONTENT_TYPE = new RegExp(`${BOL}${ci('Content-Type')}:${FWS_VALUE}`, 'g')
const RACK3_DISPOSITION_MAX_BYTES = 1536
/** Longer than any parameter name a credential is read from. */
const NAME_WINDOW = 64
const NAME_JUNK = /[\s[\]]/
const MAY_NAME = /name|content-id|content-type/i
/** Every `name=`/`name*=` not inside a longer parameter name (so not `filename=`). */
const ANY_NAME_PARAM = /(?<![A-Za-z0-9_*-])name(\*?)[ \t\n\v\f\r]*=[ \t\n\v\f\r]*/gi
/** RFC 2231 continuations (`name*0=`, `name*1*=`), which Go's mime package joins. */
const NAME_SECTION = /(?<![A-Za-z0-9_*-])name\*([0-9]+)(\*?)[ \t]*=[ \t]*("(?:[^"\\]|\\[\s\S])*"|[^\s;"]*)/gi
/**
 * White space to Go (`unicode.IsSpace`) that Rack and the gate's other readings do not take, as
 * the latin1 characters of its UTF-8 bytes: U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000, and the ASCII \v, \f and a CR not ending a line.
 */
const GO_SPACE = /\xc2[\x85\xa0]|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80|[\v\f]|\r(?!\n)/g

/** multipartHeaderNames, and whether any of them is Rack's other reading of a field Workhorse writes for a file part. */
function partNames (head: string): { readonly names: string[], readonly renamed: boolean } {
  // Every reading below needs one of these words as written (parameter and header names are never
  // decoded): a block without them names nothing. Hot for bodies of many small parts.
  if (!MAY_NAME.test(head)) return { names: [], renamed: false }
  const names = headerNames(head)
  // Workhorse hands Rails each Content-Disposition as Go reads it (parameters decoded, sorted and
  // quoted again): Rack's reading of that line is a reading of the part's name too.
  if (/content-disposition/i.test(head)) {
    for (const value of goHeaderValues(head, 'content-disposition')) {
      const normalized = goNormalizedDisposition(value)
      if (normalized !== null) names.push(...headerNames(`Content-Disposition: ${normalized}\r\n`))
    }
  }
  const renamed = workhorseRenamedFields(head)
  names.push(...renamed)
  return { names, renamed: renamed.length > 0 }
}

/**
 * The fields Workhorse writes for Rails in place of a part it stores as a file, `<name>.<key>`
 * (workhorse/internal/upload/destination, GitLabFinalizeFields): `<name>.name` holds the filename.
 */
const WORKHORSE_FILE_FIELD_KEYS = ['name', 'path', 'remote_url', 'remote_id', 'size', 'upload_duration', 'md5', 'sha1', 'sha256', 'sha512', 'gitlab-workhorse-upload']

/**
 * The names Rack 2 and Rack 3 (both readings) read from the line Go's WriteField writes for a
 * field of this name (workhorseRenamedFields).
 */
function writtenFieldReadings (written: string): string[] {
  const line = `Content-Disposition: form-data; name="${written.replace(/["\\]/g, '\\$&')}"\r\n`
  // Rack's header block ends at the first CRLF CRLF.
  const end = line.indexOf('\r\n\r\n')
  const block = end === -1 ? line : line.slice(0, end + 2)
  return [rack2PartName(block), rack3PartName(block, 'old'), rack3PartName(block, 'folded')]
}

/**
 * Rack 3's name for a part (parser.rb, handle_mime_head): Content-Disposition's `name`; without
 * that header, or over Rack 3's bound on it, the first `Content-ID:` anywhere in the block (the
 * expression is not anchored: inside a long name too); else the filename, else
 * `"#{Content-Type}[]"`, its Content-Type found anywhere too.
 */
function rack3PartName (head: string, variant: 'old' | 'folded'): string {
  const disposition = rack3Disposition(head, variant)
  const name = disposition === null ? RACK2_FIRST_CONTENT_ID.exec(head)?.[1] : disposition.name
  if (name !== undefined && name !== '') return name
  return disposition?.filename ?? `${rack2ContentTypes(head, 1)[0] ?? 'text/plain'}[]`
}

/** rack2PartHead's name: the filename, costly to find, is looked for only where Rack names the part by it. */
function rack2PartName (head: string): string {
  const name = rack2DispositionName(head) ?? RACK2_FIRST_CONTENT_ID.exec(head)?.[1] ?? null
  return name === null || name === '' ? rack2PartHead(head).name : name
}

/**
 * Whether every writtenFieldReadings of `<name>.<key>` is the name as written, for any key: a name
 * without a quote, a backslash, a `;`, a CR or an LF is written as it is, on one line whose only
 * `;` comes before `name=`, and Rack 2's expression and Rack 3's parameter loop both take the
 * quoted value whole from there, as long as Rack 3 reads that line at all: past its bound it names
 * the field by a `Content-ID:` or `Content-Type: ` inside the name, or `text/plain[]`
 * (test/security/multipart-file-part-fields-as-written.slow.ts).
 */
function writtenFieldReadAsIs (name: string): boolean {
  return name.length <= WRITTEN_NAME_MAX && !/["\\;\r\n]/.test(name)
}

/** The longest name whose every written field's Content-Disposition value (` form-data; name="<name>.<key>"`) is within Rack 3's bound. */
const WRITTEN_NAME_MAX = RACK3_DISPOSITION_MAX_BYTES - ' form-data; name="."'.length - Math.max(...WORKHORSE_FILE_FIELD_KEYS.map(key => key.length))

/**
 * The names Rack 2 or Rack 3 reads, other than the one written, from the lines Workhorse writes
 * for a part it stores as a file: one Go's mime.ParseMediaType gives a name and a filename
 * (rewrite.go); and a written name Rack nests under a credential or `_method` parameter. Go's multipart.Writer.WriteField writes each `<name>.<key>` quoted, escaping only
 * `"` and `\` (Go 1.19, the oracle's, writes a CR or LF as it is), so a name Go decoded from
 * `name*=utf-8''x%3B%20name%3Dprivate_token%20` or one holding CR LF CR LF and a Content-ID is
 * `private_token` to Rack there, with the filename for its value. Empty for any other part, and
 * for a name read as written.
 */
function workhorseRenamedFields (head: string): string[] {
  const value = goHeaderValues(head, 'content-disposition')[0]
  if (value === undefined) return []
  const params = goParseMediaType(value)?.params
  const name = params?.get('name') ?? ''
  if (name === '' || (params?.get('filename') ?? '') === '') return []
  const renamed: string[] = []
  // Hot path for bodies of many file parts: a name Rack reads as written (writtenFieldReadAsIs)
  // needs none of the three readings of its eleven fields: half of what a small file part costs.
  const asWritten = writtenFieldReadAsIs(name)
  for (const key of WORKHORSE_FILE_FIELD_KEYS) {
    const written = `${name}.${key}`
    if (!asWritten) renamed.push(...writtenFieldReadings(written).filter(read => read !== written))
    // Rack nests the written name as any other: `access_token[` writes `access_token[.name`, whose
    // filename Rails reads under `access_token` (`{".name" => filename}`), where the gate read the content.
    if (isCredentialParam(written) || isMethodOverrideParam(written)) renamed.push(written)
  }
  return renamed
}

/** multipartHeaderNames of a header block as written. */
function headerNames (head: string): string[] {
  const names = nameParams(head)
  // Go's mime.ParseMediaType, whose reading Workhorse writes again for Rails, takes any Unicode
  // white space around a parameter (its `unicode.IsSpace`, the bytes of UTF-8): read once more
  // with each such space an ASCII one.
  const spaced = head.replace(GO_SPACE, ' ')
  if (spaced !== head) names.push(...nameParams(spaced))
  const rack2 = rack2DispositionName(head)
  if (rack2 !== null) names.push(rack2)
  for (const variant of ['old', 'folded'] as const) {
    const name = rack3Disposition(head, variant)?.name
    if (name !== undefined) names.push(name)
  }
  for (const m of head.matchAll(RACK2_CONTENT_ID)) names.push(m[1]!)
  for (const m of head.matchAll(RACK3_FOLDED_CONTENT_ID)) names.push(m[1]!)
  names.push(...rack2ContentTypes(head))
  for (const m of head.matchAll(RACK3_FOLDED_CONTENT_TYPE)) names.push(m[1]!)
  return names
}

/** The values of a header in a block, its lines unfolded and trimmed as Go's textproto reads them. */
function goHeaderValues (head: string, name: string): string[] {
  const values: string[] = []
  for (const line of goHead(head).split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon !== -1 && line.slice(0, colon).toLowerCase() === name) values.push(line.slice(colon + 2))
  }
  return values
}

/** Every `name=`, `name*=` and `name*0=`... parameter of a header block, read every way (paramValues). */
function nameParams (head: string): string[] {
  const names: string[] = []
  for (const m of head.matchAll(ANY_NAME_PARAM)) {
    const start = m.index + m[0].length
    for (const v of paramValues(head, start)) {
      if (m[1] === '*') names.push(...extendedValues(v))
      else names.push(v)
    }
  }
  const sections = new Map<number, string>()
  for (const m of head.matchAll(NAME_SECTION)) {
    const raw = m[3]!.startsWith('"') ? unescapeQuoted(m[3]!.slice(1, -1)) : m[3]!
    sections.set(Number(m[1]), m[2] === '*' ? percentDecode(raw.replace(/^[^']*'[^']*'/, '')) : raw)
  }
  if (sections.size > 0) names.push([...sections.entries()].sort((a, b) => a[0] - b[0]).map(e => e[1]).join(''))
  return names
}

/**
 * The ways a parameter value starting at `start` is read: quoted with escapes, or bare up to
 * Rack 2's, Go's or Rack 3's end. Only what decides a name is read (Rack's reading skips leading
 * brackets and ends a name at the first bracket): leading white space and brackets, then
 * NAME_WINDOW characters, so that many `name=` in one block cost linear time.
 */
function paramValues (head: string, start: number): string[] {
  if (head[start] === '"') {
    let value = ''
    let kept = 0
    for (let i = start + 1; i < head.length && head[i] !== '"' && kept <= NAME_WINDOW; i++) {
      if (head[i] === '\\' && i + 1 < head.length) i++
      const c = head[i]!
      if (kept > 0 || !NAME_JUNK.test(c)) kept++
      value += c
    }
    return [value]
  }
  let end = start
  while (end < head.length && head[end] !== '\n' && NAME_JUNK.test(head[end]!)) end++
  const stop = Math.min(head.length, end + NAME_WINDOW)
  while (end < stop && head[end] !== '\n') end++
  const rest = head.slice(start, end)
  const rack2 = /^[^ \t\n\v\f\r()<>,;:\\"/[\]?=]*/.exec(rest)![0]
  const go = /^[^\s;,"]*/.exec(rest)![0]
  const semicolon = rest.indexOf(';')
  const rack3 = rubyStrip(semicolon === -1 ? rest : rest.slice(0, semicolon))
  return [...new Set([rack2, go, rack3])]
}

/** An RFC 5987 value (`utf-8''job%5Ftoken`), as sent and decoded. */
function extendedValues (raw: string): string[] {
  const value = raw.replace(/^[^']*'[^']*'/, '')
  return value.includes('%') ? [value, percentDecode(value)] : [value]
}

function percentDecode (s: string): string {
  return s.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
}

function unescapeQuoted (s: string): string {
  return s.replace(/\\([\s\S])/g, '$1')
}

// Two of Rack's expressions read line by line: as regular expressions they start a match at every
// occurrence of the header's name and scan to the line's end from each, quadratic in a line of
// repeated names (16 KiB: 7 and 14 ms a part header; found by scanning the sources with recheck).

/** Rack 2's part name from Content-Disposition (`MULTIPART_CONTENT_DISPOSITION`, then `dequote`), or null. */
function rack2DispositionName (head: string): string | null {
  const m = RACK2_NAME.exec(head)
  if (m === null) return null
  const quoted = /^"([^\n]*)"$/.exec(m[1]!)
  return (quoted === null ? m[1]! : quoted[1]!).replace(/\\([^\n])/g, '$1')
}

/** Rack 2's `get_filename`: the filename, or null for a part that is no file. */
function rack2Filename (head: string): string | null {
  if (RACK2_RFC2183.test(head)) {
    const params = new Map<string, string>()
    for (const m of head.matchAll(RACK2_DISPPARM)) {
      const pair = m.slice(1).filter((g): g is string => g !== undefined)
      params.set(pair[0]!, pair[1]!)
    }
    const filename = params.get('filename')
    if (filename !== undefined) return filename
    const extended = params.get('filename*')
    if (extended === undefined) return null
    // Ruby's split("'", 3): without two quotes there is no third field.
    const fields = extended.split("'")
    return fields.length >= 3 ? fields.slice(2).join("'") : null
  }
  const broken = RACK2_BROKEN.exec(head)
  return broken === null ? null : broken[2]!
}

/**
 * Rack 3's reading of the part's Content-Disposition (parser.rb, handle_mime_head): the first
 * such header, its parameters after the first ';' parsed one by one. Null without one, or when it
 * is over Rack 3's limit (Rack then names the part from Content-ID).
 */
function rack3Disposition (head: string, variant: 'old' | 'folded'): { name?: string, filename?: string } | null {
  const value = variant === 'old' ? rack3OldDisposition(head) : RACK3_FOLDED_DISPOSITION.exec(head)?.[1] ?? null
  if (value === null || value.length > RACK3_DISPOSITION_MAX_BYTES) return null
  let d = value
  const out: { name?: string, filename?: string } = {}
  let i = d.indexOf(';')
  if (i === -1) return out
  d = d.slice(i + 1)
  for (let count = 1; (i = d.indexOf('=')) !== -1 && count <= 16; count++) {
    const param = d.slice(0, i).replace(/^[\0 \t\n\v\f\r]+/, '')
    d = d.slice(i + 1)
    let value = ''
    if (d[0] === '"') {
      d = d.slice(1)
      let j: number
      while ((j = d.search(/["\\]/)) !== -1) {
        const c = d[j]!
        value += d.slice(0, j)
        d = d.slice(j + 1)
        if (c === '"') break
        const escaped = d.slice(0, 1)
        d = d.slice(1)
        value += param === 'filename' && escaped !== '"' ? c + escaped : escaped
      }
    } else {
      const semicolon = d.indexOf(';')
      if (semicolon !== -1) {
        value = d.slice(0, semicolon)
        d = d.slice(semicolon)
      } else {
        value = rubyStrip(d)
        d = ''
      }
    }
    if (param === 'name') out.name = value
    else if (param === 'filename' || param === 'filename*') out.filename = value
    const next = d.indexOf(';')
    if (next !== -1) d = d.slice(next + 1)
  }
  return out
}

/**
 * True when the part is a file (or a file input left empty) for Rack 2 and Rack 3 alike: its
 * content is then no parameter value. Only Content-Disposition's filename decides; a part without
 * one is a field whatever its Content-Type (Rack's Collector#on_mime_head).
 */
function isFilePart (head: string): boolean {
  return rack2Filename(head) !== null &&
    rack3Disposition(head, 'old')?.filename !== undefined &&
    rack3Disposition(head, 'folded')?.filename !== undefined &&
    !workhorseField(head)
}

/**
 * Whether Workhorse hands Rails the part as a field Rack reads a value from: Go's
 * mime.ParseMediaType of its first Content-Disposition gives it a name and no filename at all (Go
 * drops a `filename*` in a charset other than UTF-8 or US-ASCII, which Rack still reads as a
 * file). An empty filename stays in the line Workhorse writes again, and Rack gives that part no
 * value.
 */
function workhorseField (head: string): boolean {
  const value = goHeaderValues(head, 'content-disposition')[0]
  if (value === undefined) return false
  const parsed = goParseMediaType(value)
  return parsed !== null && (parsed.params.get('name') ?? '') !== '' && !parsed.params.has('filename')
}
