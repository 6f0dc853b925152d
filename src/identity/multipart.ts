// Credentials in multipart bodies, found while the bytes stream through.
//
// The threat: a job token in a multipart field (`job_token`, `token`, ...) that the gate did not
// see would be read by GitLab, so a large upload could carry a credential past the gate. The gate
// cannot buffer uploads of any size, so the guard forwards bytes as they arrive and holds back
// only what it must: a part is checked as soon as it ends, and the delimiter that follows a part
// is released only after that check. The closing delimiter, which is what lets GitLab (Workhorse
// and Rack parse streaming) act on the body, therefore never passes a credential the gate would
// refuse; the guard errors instead, and the proxy aborts the upstream request before its last byte.
//
// Rails reads the body with Rack (2.2 or 3); on upload routes Workhorse first parses it with Go's
// mime/multipart and hands Rails its own re-serialization. They disagree at the edges, so every
// part is read every way one of them could read it, and a credential found in any reading counts:
// - every occurrence of `--boundary` is a delimiter, even without the CRLF before it (Rack 2
//   accepts that, Rack 3 does not), and scanning goes on after a closing delimiter (Rack 2 opens
//   a part after a leading `--boundary--`);
// - Rack's header block ends at the first CRLF CRLF after the delimiter line, and without one it
//   runs on across the next delimiter (rack/multipart/parser.rb, `@head_regex`); Go's ends at the
//   first empty line, LF-only lines included;
// - a part is named by every `name=` / `name*=` in its header block, by `Content-ID` and by its
//   `Content-Type` (Rack names a part without a name `"#{content_type}[]"`), read as Rack 2,
//   Rack 3 and Go read them, Go's Unicode white space around `=` included (multipartHeaderNames);
// - a part Go reads as a file is named by Rack's reading of the fields Workhorse writes in its
//   place too, and one that reading renames is refused (workhorseRenamedFields);
// - a part is a file, whose content is no parameter, only when Rack 2 and Rack 3 both find a
//   filename in its Content-Disposition and Go does too, or gives it no name (isFilePart): a
//   `filename=` elsewhere changes nothing;
// - a non-file part whose value is shaped like a job token (token-shape.ts) is one, whatever its name.
// Being more lenient can only refuse a request GitLab would have read differently, never pass one.

import { Transform, type TransformCallback } from 'node:stream'
import { isCredentialParam, isMethodOverrideParam, isUploadOperationsParam, paramCredential, type Credential, type MethodParam } from './credentials.ts'
import { trimEnds } from '../text.ts'
import { goNormalizedDisposition, goParseMediaType } from './go-mime.ts'
import { IdentityError, MAX_TOKEN_BYTES } from './types.ts'

export const DEFAULT_MAX_PART_HEADER_BYTES = 16 * 1024

export interface MultipartGuardOptions {
  /** The boundary parameter of the request's Content-Type (see parseMultipartBoundary). */
  readonly boundary: string
  /**
   * The job token the gate already enforces (from a header or the query). A field holding
   * exactly this token is the same credential repeated and passes; any other credential errors.
   * Without it, a job token in a field errors and other credentials pass (not the gate's business).
   */
  readonly allowedToken?: string
  /**
   * Without allowedToken: refuse every credential, not only job tokens. For package writes, whose
   * Maintainer-only rules must know the caller before the body is forwarded.
   */
  readonly refuseAnyCredential?: boolean
  /**
   * Refuse a part that Rack could read as `_method` (METHOD_OVERRIDE_NOT_INSPECTABLE): on API
   * paths the route was decided before the body streams, so a Rack::MethodOverride in it cannot be.
   */
  readonly refuseMethodOverride?: boolean
  /**
   * Refuse a part that Rack could read as `operations` (UPLOAD_OPERATIONS_PARAMETER): on API paths
   * GitLab's upload middleware writes its members over the parameters (credentials.ts,
   * uploadOperationsReachable), which this guard does not read.
   */
  readonly refuseOperations?: boolean
  /** Longest part header block inspected. Default 16 KiB. */
  readonly maxHeaderBytes?: number
}

/**
 * A Transform that forwards a multipart body unchanged and errors (IdentityError) before the
 * delimiter after a part holding a credential it must not let through.
 */
export function createMultipartGuard (options: MultipartGuardOptions): Transform {
  const allowed = options.allowedToken
  const scanner = new MultipartScanner(options.boundary, options.maxHeaderBytes ?? DEFAULT_MAX_PART_HEADER_BYTES, (c) => {
    if (allowed !== undefined) {
      if (c.secret !== allowed) throw new IdentityError('CREDENTIAL_AMBIGUOUS', `multipart field ${c.where} holds a credential other than the request's job token`)
    } else if (c.jobToken || options.refuseAnyCredential === true) {
      throw new IdentityError('MULTIPART_CREDENTIAL_NOT_ALLOWED', `multipart field ${c.where} holds a ${c.jobToken ? 'job token' : 'credential'}`)
    }
  }, options.refuseMethodOverride === true
    ? () => { throw new IdentityError('METHOD_OVERRIDE_NOT_INSPECTABLE', 'a multipart part could be read as _method') }
    : undefined, options.refuseOperations === true ? refuseOperationsPart : undefined)
  return new Transform({
    transform (chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
      let out: Buffer
      try {
        out = scanner.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
      } catch (err) {
        callback(err as Error)
        return
      }
      callback(null, out.length > 0 ? out : undefined)
    },
    flush (callback: TransformCallback): void {
      let out: Buffer
      try {
        out = scanner.end()
      } catch (err) {
        callback(err as Error)
        return
      }
      callback(null, out.length > 0 ? out : undefined)
    }
  })
}

export interface MultipartScan {
  readonly credentials: Credential[]
  /** `_method` as Rack::MethodOverride reads it from this body (`req.POST["_method"]`). */
  readonly methodParam: MethodParam
}

/**
 * Every credential in a whole (buffered) multipart body, and its `_method`. Throws IdentityError
 * for an oversized part header, and with `refuseOperations` for a part Rack could read as `operations`.
 */
export function scanMultipart (body: Buffer, boundary: string, maxHeaderBytes = DEFAULT_MAX_PART_HEADER_BYTES, refuseOperations = false): MultipartScan {
  const credentials: Credential[] = []
  const scanner = new MultipartScanner(boundary, maxHeaderBytes, c => { credentials.push(c) }, undefined, refuseOperations ? refuseOperationsPart : undefined)
  scanner.write(body)
  scanner.end()
  return { credentials, methodParam: scanner.methodParam() }
}

/** Every credential in a whole (buffered) multipart body. Throws IdentityError for an oversized part header. */
export function multipartCredentials (body: Buffer, boundary: string, maxHeaderBytes = DEFAULT_MAX_PART_HEADER_BYTES): Credential[] {
  return scanMultipart(body, boundary, maxHeaderBytes).credentials
}

/** The bounds of a multipart body as its chunks arrive (createMultipartCounter). */
export interface MultipartCounter {
  /** Counts a chunk; throws IdentityError at the one that passes a bound. */
  write (chunk: Buffer): void
  /** The body ended: counts its last part. */
  end (): void
}

/**
 * Counts a multipart body's parts and their header bytes as the guard does, without reading any
 * part: write() throws the guard's IdentityError (MULTIPART_TOO_MANY_PARTS,
 * MULTIPART_HEADERS_TOO_LARGE) at the chunk that passes a bound, so a reader that holds a body to
 * read it some other way (the configuration API's GraphQL) stops at the same bytes, before it
 * reads any part: a part costs that reader, then the guard, far more than counting it.
 */
export function createMultipartCounter (boundary: string, maxHeaderBytes = DEFAULT_MAX_PART_HEADER_BYTES): MultipartCounter {
  const scanner = new MultipartScanner(boundary, maxHeaderBytes, () => {}, undefined, undefined, true)
  return {
    write (chunk) { scanner.write(chunk) },
    end () { scanner.end() }
  }
}

function refuseOperationsPart (): never {
  throw new IdentityError('UPLOAD_OPERATIONS_PARAMETER', 'a multipart part could be read as operations')
}

// ---------------------------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0)
const CRLF = Buffer.from('\r\n')
/** Bytes of a part value kept for comparison: a maximal token, the CRLF before the delimiter, and one to tell "too long". */
const CAPTURE_LIMIT = MAX_TOKEN_BYTES + 3
/**
 * The most parts a body may have. Rack reads none of 4,096 parts or more: its
 * `multipart_total_part_limit` (rack/utils.rb, RACK_MULTIPART_TOTAL_PART_LIMIT, 4096 by default)
 * raises once that many are open (rack/multipart/parser.rb, check_part_limits), and GitLab acts on
 * no parameter of it. Each part is read every way a parser could read it, some seventy times the
 * CPU of the same bytes in a file: 8 MiB of empty parts, no token needed, held the gate's CPU for
 * a second, a 64 KiB one for 10 ms.
 */
export const MAX_MULTIPART_PARTS = 4096

/**
 * The most header bytes a body's parts may hold together (each part's delimiter line and header
 * block, as far as any parser reads it). A header byte is read every way a parser could read it,
 * costing up to fifty times a file's byte: 4,096 parts of 16 KiB header blocks (`name="a"; `
 * over and over), no token needed, held the gate's CPU for 17 s. Rack keeps every part's header
 * and counts it against 16 MiB; real bodies hold a few hundred bytes of headers.
 */
export const MAX_MULTIPART_HEAD_BYTES = 512 * 1024

/** One way a parser reads a part: its header block and where its value starts. */
interface Reading {
  readonly head: string
  readonly valueStart: number
  /** Rack's reading of a well-framed part, for `_method` (see MultipartScanner.methodParam). */
  readonly exact: boolean
  /** A header block run on across delimiters: read as a field whatever it says (the safe side). */
  readonly merged: boolean
}

/**
 * Push parser: write() returns the bytes that may be forwarded now, end() the rest. Throws
 * whatever onCredential throws. Bytes held back: the last (marker length - 1) bytes, which might
 * start a delimiter, and a delimiter until the part before it is decided. Of each part only the
 * first bytes are kept (a delimiter line, a header block and a token's worth of value), so memory
 * stays flat whatever the size of a file part; what is decided does not depend on the chunking.
 */
class MultipartScanner {
  private readonly marker: Buffer
  private readonly maxHeaderBytes: number
  private readonly keep: number
  private readonly onCredential: (c: Credential) => void
  private readonly onMethodPart: (() => void) | undefined
  private readonly onOperationsPart: (() => void) | undefined
  /** Only count parts and header bytes (createMultipartCounter): no part is read. */
  private readonly countOnly: boolean
  private tail: Buffer = EMPTY
  /** Delimiters seen: a part's each, and the closing one. */
  private delimiters = 0
  /** Header bytes of the parts decided so far (MAX_MULTIPART_HEAD_BYTES). */
  private headBytes = 0
  /** A delimiter was seen; before it is the preamble. */
  private started = false
  private capture: Buffer[] = []
  private captured = 0
  private length = 0
  /** The last two bytes of the part: the CRLF before the next delimiter, or not. */
  private last: Buffer = EMPTY
  /** Rack's header block of an earlier part that met no CRLF CRLF: it runs on into the next part. */
  private pendingHead: string | null = null
  // For `_method`: whether Rack 2, Rack 3 and Go frame this body alike, and what was read.
  private regular = true
  private closed = false
  private methodValues: string[] = []
  private methodUncertain = false

  constructor (boundary: string, maxHeaderBytes: number, onCredential: (c: Credential) => void, onMethodPart?: () => void, onOperationsPart?: () => void, countOnly = false) {
    this.marker = Buffer.from('--' + boundary, 'latin1')
    this.maxHeaderBytes = maxHeaderBytes
    // A delimiter line and a header block of at most maxHeaderBytes each, then a value.
    this.keep = 2 * maxHeaderBytes + CAPTURE_LIMIT + 8
    this.onCredential = onCredential
    this.onMethodPart = onMethodPart
    this.onOperationsPart = onOperationsPart
    this.countOnly = countOnly
  }

  write (chunk: Buffer): Buffer {
    const buf = this.tail.length === 0 ? chunk : Buffer.concat([this.tail, chunk])
    const m = this.marker.length
    let pos = 0
    for (;;) {
      const idx = buf.indexOf(this.marker, pos)
      if (idx === -1) {
        // No delimiter can start before `safe`: it would have been found.
        const safe = Math.max(pos, buf.length - (m - 1))
        this.feed(buf.subarray(pos, safe))
        pos = safe
        break
      }
      this.feed(buf.subarray(pos, idx))
      // A delimiter past those of MAX_MULTIPART_PARTS parts and the closing one: never forwarded.
      if (++this.delimiters > MAX_MULTIPART_PARTS + 1) throw new IdentityError('MULTIPART_TOO_MANY_PARTS', `multipart body has more than ${MAX_MULTIPART_PARTS} parts`)
      this.endPart(false) // may throw: the delimiter at idx is then never forwarded
      pos = idx + m
    }
    // Copy the few held bytes so a large chunk is not kept alive by them.
    this.tail = Buffer.from(buf.subarray(pos))
    return buf.subarray(0, pos)
  }

  end (): Buffer {
    const rest = this.tail
    this.tail = EMPTY
    this.feed(rest)
    this.endPart(true)
    return rest
  }

  methodParam (): MethodParam {
    if (this.methodValues.length === 0 && !this.methodUncertain) return { kind: 'absent' }
    if (this.methodUncertain || !this.regular || !this.closed || new Set(this.methodValues).size > 1) return { kind: 'uncertain' }
    return { kind: 'present', value: this.methodValues[0]! }
  }

  private feed (bytes: Buffer): void {
    if (bytes.length === 0) return
    if (!this.started) {
      this.regular = false // a preamble: Rack looks for the first delimiter line, Go too, the gate for any delimiter
      return
    }
    this.length += bytes.length
    this.last = bytes.length >= 2 ? Buffer.from(bytes.subarray(bytes.length - 2)) : Buffer.concat([this.last, bytes]).subarray(-2)
    const room = this.keep - this.captured
    if (room > 0) {
      // Copied: a view would keep the whole (possibly large) chunk alive until the part ends.
      const take = Buffer.from(bytes.subarray(0, room))
      this.capture.push(take)
      this.captured += take.length
    }
  }

  /** The part before a delimiter (or the end of the body) is complete: decide on it now. */
  private endPart (final: boolean): void {
    if (!this.started) {
      this.started = true
      return
    }
    const text = Buffer.concat(this.capture, this.captured).toString('latin1')
    const truncated = this.length > this.captured
    const endsWithCrlf = this.last.equals(CRLF)
    this.capture = []
    this.captured = 0
    this.length = 0
    this.last = EMPTY
    this.decidePart(text, truncated, endsWithCrlf, final)
  }

  private decidePart (text: string, truncated: boolean, endsWithCrlf: boolean, final: boolean): void {
    const max = this.maxHeaderBytes
    const closing = text.startsWith('--')
    if (this.closed || (!closing && (!text.startsWith('\r\n') || (!final && !endsWithCrlf))) || (closing && final && text.length > 2 && !text.startsWith('--\r\n'))) this.regular = false
    if (closing) this.closed = true
    else if (final) this.regular = false // the body ends without a closing delimiter: Rack raises

    const lf = text.indexOf('\n')
    const lineEnd = lf === -1 ? text.length : lf + 1
    const readings: Reading[] = []
    let rackUnreadable = false

    // Rack: the header block runs from the delimiter line to the first CRLF CRLF. Without one
    // before the next delimiter it runs on across it (that delimiter is no delimiter to Rack),
    // and whether this delimiter is one depends on the lines before it (Rack 2 skips a preamble
    // line by line): both the block carried over and the one starting here are read.
    if (this.pendingHead !== null) {
      const at = text.indexOf('\r\n\r\n')
      const head = this.pendingHead + this.marker.toString('latin1') + text.slice(0, at === -1 ? text.length : at + 2)
      this.pendingHead = null
      if (head.length > max) rackUnreadable = !final
      else if (at !== -1) readings.push({ head, valueStart: at + 4, exact: false, merged: true })
      else if (!truncated) this.pendingHead = head
      else rackUnreadable = !final
    }
    const at = lf === -1 ? -1 : text.indexOf('\r\n\r\n', lineEnd)
    // Go (Workhorse): the header block ends at the first empty line, LF-only lines included.
    // Rails then reads Workhorse's re-serialization of it (goHead).
    const goEnd = lf === -1 ? null : goHeaderEnd(text, lineEnd)
    // Counted before any reading of it: the part past the bound is never read, nor its delimiter
    // forwarded. Without Rack's end of the block within the bound, all of the part is read as one
    // (carried over into the next), but a file part's that Go's block ends (LF-only lines, as
    // large uploads may have) is read up to that.
    const rackEnds = at !== -1 && at + 2 - lineEnd <= max
    this.headBytes += rackEnds ? Math.max(at + 4, goEnd?.end ?? 0) : goEnd !== null && (truncated || at !== -1) ? goEnd.end : text.length
    if (this.headBytes > MAX_MULTIPART_HEAD_BYTES) throw new IdentityError('MULTIPART_HEADERS_TOO_LARGE', `multipart parts hold more than ${MAX_MULTIPART_HEAD_BYTES} bytes of headers`)
    if (this.countOnly) return
    // The delimiter right after the header block, with no CRLF of its own before it: Rack 2 ends
    // the value there, empty, then skips two bytes as if they were that CRLF and every line up to
    // the next delimiter line, swallowing the next part; Go reads the next part as one.
    if (!closing && !final && !truncated && at !== -1 && at + 4 === text.length) this.regular = false
    if (at !== -1 && at + 2 - lineEnd <= max) {
      readings.push({ head: text.slice(lineEnd, at + 2), valueStart: at + 4, exact: !closing && text.startsWith('\r\n'), merged: false })
    } else if (at === -1 && !truncated && text.length - lineEnd <= max) {
      // A later part holds the value. A block carried over already holds this one.
      this.pendingHead ??= text.slice(lineEnd)
      if (!closing) this.regular = false
    } else {
      rackUnreadable ||= !final
    }

    const go = goEnd !== null && goEnd.start - lineEnd <= max ? goEnd : null
    if (go !== null) {
      const head = goHead(text.slice(lineEnd, go.start))
      const rack = readings[0]
      if (rack === undefined || rack.valueStart !== go.end || rack.head !== head) {
        readings.push({ head, valueStart: go.end, exact: false, merged: false })
        if (!closing) this.regular = false
      }
    } else if (!closing) {
      this.regular = false
    }

    if (rackUnreadable) {
      // A header block longer than inspected. Large uploads with LF-only lines are Go's to read:
      // accepted when the block names the part as Rack would (its name is then known); a
      // credential name there has a value no token can equal, and is decided as one.
      const name = go === null ? null : rack2DispositionName(text.slice(lineEnd, lineEnd + max))
      if (name === null) throw new IdentityError('MULTIPART_HEADER_TOO_LARGE', `multipart part header is over ${max} bytes`)
      if (isMethodOverrideParam(name)) this.methodPart()
      if (isUploadOperationsParam(name)) this.onOperationsPart?.()
      if (isCredentialParam(name)) this.onCredential({ ...paramCredential(name, text.slice(-CAPTURE_LIMIT) + '\u0000', 'body')!, jobToken: true })
    }

    for (const reading of readings) this.decideReading(text, reading, truncated)
  }

  private decideReading (text: string, reading: Reading, truncated: boolean): void {
    const { names, file: fileHead, renamed } = readHead(reading.head)
    // The fields Workhorse writes for such a file part hold its filename, which is read nowhere here.
    if (renamed) throw new IdentityError('MULTIPART_PART_NAME_AMBIGUOUS', 'a multipart file part whose fields Workhorse writes again under a name Rack reads otherwise')
    if (this.onOperationsPart !== undefined && names.some(isUploadOperationsParam)) this.onOperationsPart()
    const method = names.some(isMethodOverrideParam)
    // Workhorse reads its upload routes' bodies with Go's NextPart(), which decodes a part sent as
    // quoted-printable and hides the header; Rails then reads the decoded value. A part a
    // credential or `_method` could be read from is read here as sent: only identity encodings.
    if ((method || names.some(isCredentialParam)) && transferEncoded(reading.head)) {
      throw new IdentityError('MULTIPART_TRANSFER_ENCODING', 'a multipart part that may carry a credential or _method has a Content-Transfer-Encoding')
    }
    if (method) this.methodPart()
    const file = !reading.merged && fileHead
    if (method) {
      if (reading.exact && !file && STRICT_METHOD_HEAD.test(reading.head) && !truncated) this.methodValues.push(Buffer.from(partValue(text, reading.valueStart, truncated), 'latin1').toString('utf8'))
      else this.methodUncertain = true
    }
    const credentialNames = [...new Set(names.filter(isCredentialParam))]
    // A file's content is no parameter; under a credential name it is read all the same (the
    // safe side: such a request is refused, or held to the job's scope).
    if (file && credentialNames.length === 0) return
    const value = Buffer.from(partValue(text, reading.valueStart, truncated), 'latin1').toString('utf8')
    for (const name of credentialNames.length > 0 ? credentialNames : ['']) {
      const c = paramCredential(name, value, 'body')
      if (c !== null) this.onCredential(c)
    }
  }

  private methodPart (): void {
    this.onMethodPart?.()
  }
}

/**
 * partNames and isFilePart of a header block, remembered for the blocks seen last: both are pure,
 * and a body of many parts repeats its few header blocks (Rack's and Go's readings of one block
 * cost microseconds, which a body of thousands of tiny parts multiplies).
 */
const headReadings = new Map<string, { readonly names: readonly string[], readonly file: boolean, readonly renamed: boolean }>()
const HEAD_READINGS_MAX = 256
/** Longer blocks are read every time: they are few, and keeping them would hold memory. */
const HEAD_READING_KEY_MAX = 1024

export function readHead (head: string): { readonly names: readonly string[], readonly file: boolean, readonly renamed: boolean } {
  const known = headReadings.get(head)
  if (known !== undefined) return known
  const reading = { ...partNames(head), file: isFilePart(head) }
  if (head.length <= HEAD_READING_KEY_MAX) {
    if (headReadings.size >= HEAD_READINGS_MAX) headReadings.clear()
    headReadings.set(head, reading)
  }
  return reading
}

/** Content-Transfer-Encoding values under which every parser reads a part's bytes as sent. */
const IDENTITY_TRANSFER_ENCODINGS: ReadonlySet<string> = new Set(['7bit', '8bit', 'binary'])

/**
 * True when a header block has a Content-Transfer-Encoding line (the name in any case, white space
 * around it, its value with continuation lines unfolded as Go does) whose value is not an identity
 * encoding: Go's NextPart() decodes `quoted-printable` (any case), and any other is refused too.
 */
export function transferEncoded (head: string): boolean {
  if (!/content-transfer-encoding/i.test(head)) return false
  const lines = head.split('\n').map(l => l.endsWith('\r') ? l.slice(0, -1) : l)
  for (let i = 0; i < lines.length; i++) {
    const colon = lines[i]!.indexOf(':')
    if (colon === -1 || trimEnds(lines[i]!.slice(0, colon), ' \t').toLowerCase() !== 'content-transfer-encoding') continue
    let value = lines[i]!.slice(colon + 1)
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1]!)) value += ' ' + lines[++i]!
    if (!IDENTITY_TRANSFER_ENCODINGS.has(trimEnds(value, ' \t').toLowerCase())) return true
  }
  return false
}

/** A part's value from `start`: without the line end before the next delimiter, at most a token's length and one. */
function partValue (text: string, start: number, truncated: boolean): string {
  let value = text.slice(start, start + CAPTURE_LIMIT)
  if (!truncated && start + CAPTURE_LIMIT >= text.length) {
    if (value.endsWith('\r\n')) value = value.slice(0, -2)
    else if (value.endsWith('\n')) value = value.slice(0, -1)
  }
  return value
}

/** Go's textproto header end: the first empty line at or after `from` ({start: where the block ends, end: where the value starts}). */
function goHeaderEnd (text: string, from: number): { start: number, end: number } | null {
  if (text.startsWith('\r\n', from)) return { start: from, end: from + 2 }
  if (text.startsWith('\n', from)) return { start: from, end: from + 1 }
  for (let i = text.indexOf('\n', from); i !== -1 && i + 1 < text.length; i = text.indexOf('\n', i + 1)) {
    if (text[i + 1] === '\n') return { start: i + 1, end: i + 2 }
    if (text[i + 1] === '\r' && text[i + 2] === '\n') return { start: i + 1, end: i + 3 }
  }
  return null
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
/** The one header block a `_method` part may have to be read alike by every parser. */
const STRICT_METHOD_HEAD = new RegExp(`^${ci('Content-Disposition')}:[ \\t]*form-data[ \\t]*;[ \\t]*name=(?:"_method"|_method)[ \\t]*\\r\\n$`)

/**
 * Every name a parser could give a part from its header block: each `name=`/`name*=` parameter
 * anywhere (quoted with escapes, bare as Rack 2, Rack 3 and Go end it, RFC 5987 and RFC 2231),
 * Rack 2's and Rack 3's own readings, `Content-ID`, and `Content-Type` (Rack's name for a part
 * without one). Raw: callers read them as Rack reads parameter names.
 */
export function multipartHeaderNames (head: string): string[] {
  return partNames(head).names
}

/** multipartHeaderNames, and whether any of them is Rack's other reading of a field Workhorse writes for a file part. */
function partNames (head: string): { readonly names: string[], readonly renamed: boolean } {
  // Every reading below needs one of these words as written (parameter and header names are never
  // decoded): a block without them names nothing. Hot for bodies of many small parts.
  if (!MAY_NAME.test(head)) return { names: [], renamed: false }
  const names = headerNames(head)
  // Workhorse hands Rails each Content-Disposition as Go reads it (parameters decoded, sorted and
  // quoted again): Rack's reading of that line is a reading of the part's name too.
  if (/content-disposition/i.test(head)) {
    for (const value of goDispositions(head)) {
      const normalized = goNormalizedDisposition(value, goParsedDisposition(value))
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
export function writtenFieldReadings (written: string): string[] {
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
 * Whether every writtenFieldReadings of `<name>.<key>` is the name as written, for any key. Go
 * writes the name on one line, quoted, `"` and `\` escaped, which Rack 2's quoted value
 * (`"(?:\\"|[^"])*"`, then `dequote`) and Rack 3's parameter loop both read back whole, unless
 * the name holds a CR or an LF (the line ends there), or a `;` followed by `name=` (Rack 2's
 * `Content-Disposition:[^:]*;\s*name=` takes the last one). Rack 3 reads that line only within its
 * bound: past it, it names the field by a `Content-ID:` or `Content-Type: ` inside the name, or
 * `text/plain[]` (test/security/multipart-file-part-fields-as-written.slow.ts). The bound is on
 * the name as written, each `"` and `\` a byte longer for its escape
 * (test/security/multipart-file-part-escaped-long-names.test.ts).
 */
export function writtenFieldReadAsIs (name: string): boolean {
  if (name.length > WRITTEN_NAME_MAX || /[\r\n]|;[ \t\v\f]*name=/i.test(name)) return false
  let written = name.length
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c === 0x22 || c === 0x5c) written++
  }
  return written <= WRITTEN_NAME_MAX
}

/** The longest name, as written (escapes included), whose every written field's Content-Disposition value (` form-data; name="<name>.<key>"`) is within Rack 3's bound. */
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
  const value = goDispositions(head)[0]
  if (value === undefined) return []
  const params = goParsedDisposition(value)?.params
  const name = params?.get('name') ?? ''
  if (name === '' || (params?.get('filename') ?? '') === '') return []
  const renamed: string[] = []
  // Hot path for bodies of many file parts: a name Rack reads as written (writtenFieldReadAsIs)
  // needs none of the three readings of its eleven fields: most of what a small file part costs.
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
  // Each expression below needs its header's name as written (any case): a block without it
  // skips a scan of every position (hot path for bodies of many small parts).
  if (HAS_CONTENT_ID.test(head)) {
    for (const m of head.matchAll(RACK2_CONTENT_ID)) names.push(m[1]!)
    for (const m of head.matchAll(RACK3_FOLDED_CONTENT_ID)) names.push(m[1]!)
  }
  if (HAS_CONTENT_TYPE.test(head)) {
    names.push(...rack2ContentTypes(head))
    for (const m of head.matchAll(RACK3_FOLDED_CONTENT_TYPE)) names.push(m[1]!)
  }
  return names
}

const HAS_CONTENT_ID = /content-id/i
const HAS_CONTENT_TYPE = /content-type/i

/**
 * The answer of a pure function of one string, kept for the next call with the same string: a
 * header block's readings ask Go's and Rack 3's reading of its Content-Disposition several times
 * over (partNames, workhorseRenamedFields, isFilePart). Hot path for bodies of many small parts.
 */
function lastAnswer<T> (read: (text: string) => T): (text: string) => T {
  let last: string | undefined
  let answer: T | undefined
  return text => {
    if (text !== last) {
      answer = read(text)
      last = text
    }
    return answer as T
  }
}

/** goHeaderValues of Content-Disposition. The array is shared: never changed. */
const goDispositions = lastAnswer(head => goHeaderValues(head, 'content-disposition'))
/** goParseMediaType of a Content-Disposition value. The answer is shared: never changed. */
const goParsedDisposition = lastAnswer(goParseMediaType)

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

/** Ruby's String#strip: ASCII white space and NUL. */
export function rubyStrip (s: string): string {
  return trimEnds(s, '\0 \t\n\v\f\r')
}

// Two of Rack's expressions read line by line: as regular expressions they start a match at every
// occurrence of the header's name and scan to the line's end from each, quadratic in a line of
// repeated names (16 KiB: 7 and 14 ms a part header; found by scanning the sources with recheck).

/**
 * The lines of a header block that end in CRLF and hold `name` (lower case, matched in any case):
 * where the name first occurs in the line, and the line's LF. Each occurrence is searched for
 * once, so the walk is linear.
 */
function * crlfLinesNaming (head: string, name: string): Generator<{ readonly at: number, readonly lf: number }> {
  const lower = head.toLowerCase()
  let at = lower.indexOf(name)
  for (let start = 0; at !== -1;) {
    const lf = head.indexOf('\n', start)
    if (lf === -1) return
    if (at < start) at = lower.indexOf(name, start)
    if (at !== -1 && at < lf && head[lf - 1] === '\r') yield { at, lf }
    start = lf + 1
  }
}

/**
 * Rack 2's `/Content-Type: (.*)\r\n/ni` over a header block: on each line that ends in CRLF, the
 * rest of it after the line's first `Content-Type: ` (any case, anywhere in the line). `limit`:
 * the first so many.
 */
export function rack2ContentTypes (head: string, limit = Infinity): string[] {
  const found: string[] = []
  for (const { at, lf } of crlfLinesNaming(head, 'content-type: ')) {
    if (found.length >= limit) break
    found.push(head.slice(at + 14, lf - 1))
  }
  return found
}

/**
 * Rack 3.0 and 3.1 take the first Content-Disposition line not folded (later 3.x the first
 * header line, folded lines included: RACK3_FOLDED_DISPOSITION): as
 * `/Content-Disposition:([^\n]*)(?=\r\n(?:[^\s]|$))/i`, the rest of the first line that holds
 * the name, ends in CRLF and is not followed by a folded line. Null without one.
 */
export function rack3OldDisposition (head: string): string | null {
  for (const { at, lf } of crlfLinesNaming(head, 'content-disposition:')) {
    const next = head[lf + 1]
    if (next === undefined || !' \t\n\v\f\r'.includes(next)) return head.slice(at + 20, lf - 1)
  }
  return null
}

/**
 * Ruby's `text =~ /^"(.*)"$/` then `$1`: the inside of the first line (`^` and `$` are line
 * anchors, `.` anything but LF) that starts and ends with a quote; undefined without one. Line by
 * line: as an expression it retried every line start, quadratic in a value of many short lines.
 */
function rubyUnquoted (text: string): string | undefined {
  for (let start = 0; start <= text.length;) {
    const lf = text.indexOf('\n', start)
    const end = lf === -1 ? text.length : lf
    if (end - start >= 2 && text[start] === '"' && text[end - 1] === '"') return text.slice(start + 1, end - 1)
    if (lf === -1) return undefined
    start = lf + 1
  }
  return undefined
}

/** Rack 2's part name from Content-Disposition (`MULTIPART_CONTENT_DISPOSITION`, then `dequote`), or null. */
function rack2DispositionName (head: string): string | null {
  const m = RACK2_NAME.exec(head)
  if (m === null) return null
  const quoted = /^"([^\n]*)"$/.exec(m[1]!)
  return (quoted === null ? m[1]! : quoted[1]!).replace(/\\([^\n])/g, '$1')
}

/**
 * How Rack 2.2 takes a part from its header block (parser.rb, handle_mime_head, and get_data):
 * the name of Content-Disposition, else Content-ID, else (also when empty) the filename or
 * `"#{Content-Type}[]"`. `file`: a filename was found, the value is an upload; `skipped`: the
 * filename is empty (a file input left empty), the part gives no parameter at all.
 */
export function rack2PartHead (head: string): { readonly name: string, readonly file: boolean, readonly skipped: boolean } {
  let name = rack2DispositionName(head) ?? RACK2_FIRST_CONTENT_ID.exec(head)?.[1] ?? null
  const raw = rack2Filename(head)
  // Rack unquotes the filename (`/^"(.*)"$/`); percent escapes and backslashes never empty one.
  const filename = raw === null ? null : rubyUnquoted(raw) ?? raw
  if (name === null || name === '') name = filename ?? `${rack2ContentTypes(head, 1)[0] ?? 'text/plain'}[]`
  return { name, file: filename !== null, skipped: filename === '' }
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
function rack3Disposition (head: string, variant: 'old' | 'folded'): { readonly name?: string, readonly filename?: string } | null {
  return variant === 'old' ? rack3OldReading(head) : rack3FoldedReading(head)
}

const rack3OldReading = lastAnswer(head => rack3ReadDisposition(rack3OldDisposition(head)))
const rack3FoldedReading = lastAnswer(head => rack3ReadDisposition(RACK3_FOLDED_DISPOSITION.exec(head)?.[1] ?? null))

/** Rack 3's parameter loop over a Content-Disposition value (rack3Disposition). */
function rack3ReadDisposition (value: string | null): { name?: string, filename?: string } | null {
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
export function isFilePart (head: string): boolean {
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
  const value = goDispositions(head)[0]
  if (value === undefined) return false
  const parsed = goParsedDisposition(value)
  return parsed !== null && (parsed.params.get('name') ?? '') !== '' && !parsed.params.has('filename')
}
