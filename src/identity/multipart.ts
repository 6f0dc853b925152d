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
// Parsers disagree at the edges (Rack 2 accepts a delimiter without the CRLF before it, Rack 3
// wants it, Go accepts LF-only lines), so this scanner is more lenient than all of them:
// - every occurrence of `--boundary` anywhere is a delimiter, even inside what another parser
//   calls content, and scanning goes on after a closing delimiter (a parser that did not see that
//   one as a delimiter keeps reading);
// - every `name=` / `name*=` parameter in a part's whole header block counts, quoted or not,
//   escaped or percent-encoded, read as Rack reads parameter names (`job_token[]` is `job_token`);
// - a non-file part whose value starts with `glcbt-` is a job token, whatever its name.
// Being more lenient can only refuse a request GitLab would have read differently, never pass one.

import { Transform, type TransformCallback } from 'node:stream'
import { isCredentialParam, paramCredential, type Credential } from './credentials.ts'
import { IdentityError, JOB_TOKEN_PREFIX, MAX_TOKEN_BYTES } from './types.ts'

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
  })
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

/** Every credential in a whole (buffered) multipart body. Throws IdentityError for an oversized part header. */
export function multipartCredentials (body: Buffer, boundary: string, maxHeaderBytes = DEFAULT_MAX_PART_HEADER_BYTES): Credential[] {
  const found: Credential[] = []
  const scanner = new MultipartScanner(boundary, maxHeaderBytes, c => { found.push(c) })
  scanner.write(body)
  scanner.end()
  return found
}

// ---------------------------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0)
const CRLFCRLF = Buffer.from('\r\n\r\n')
const PREFIX = Buffer.from(JOB_TOKEN_PREFIX)
/** Bytes of a part value kept for comparison: a maximal token, the CRLF before the delimiter, and one to tell "too long". */
const CAPTURE_LIMIT = MAX_TOKEN_BYTES + 3

/** `name=` or `name*=` not preceded by a name character (so not `filename=`); quoted (escapes allowed, end quote optional) or bare. */
const NAME_PARAM = /(?<![A-Za-z0-9_-])name(\*?)\s*=\s*(?:"((?:[^"\\]|\\.)*)"?|([^\s;,"]*))/gi
const FILENAME_PARAM = /(?<![A-Za-z0-9_-])filename\*?\s*=/i

type State = 'preamble' | 'marker' | 'headers' | 'body' | 'epilogue'

interface Part {
  /** Credential parameter names found in the header block (normalized later by paramCredential). */
  readonly credentialNames: readonly string[]
  readonly file: boolean
  /** A verdict was reached; the rest of the value is not looked at. */
  decided: boolean
}

/**
 * Push parser: write() returns the bytes that may be forwarded now, end() the rest. Throws
 * whatever onCredential throws. Bytes held back: the last (marker length - 1) bytes, which might
 * start a delimiter, and a delimiter until the part before it is decided.
 */
class MultipartScanner {
  private readonly marker: Buffer
  private readonly maxHeaderBytes: number
  private readonly onCredential: (c: Credential) => void
  private tail: Buffer = EMPTY
  private state: State = 'preamble'
  private peek: Buffer = EMPTY
  private header: Buffer = EMPTY
  private part: Part | null = null
  private capture: Buffer[] = []
  private captured = 0

  constructor (boundary: string, maxHeaderBytes: number, onCredential: (c: Credential) => void) {
    this.marker = Buffer.from('--' + boundary, 'latin1')
    this.maxHeaderBytes = maxHeaderBytes
    this.onCredential = onCredential
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
      this.endPart() // may throw: the delimiter at idx is then never forwarded
      pos = idx + m
      this.state = 'marker'
    }
    // Copy the few held bytes so a large chunk is not kept alive by them.
    this.tail = Buffer.from(buf.subarray(pos))
    return buf.subarray(0, pos)
  }

  end (): Buffer {
    const rest = this.tail
    this.tail = EMPTY
    this.feed(rest)
    this.endPart()
    return rest
  }

  private feed (bytes: Buffer): void {
    let b = bytes
    while (b.length > 0) {
      switch (this.state) {
        case 'preamble':
        case 'epilogue':
          return
        case 'marker': {
          // Two bytes after the delimiter tell a closing one (`--`) from a part.
          const need = 2 - this.peek.length
          this.peek = Buffer.concat([this.peek, b.subarray(0, need)])
          b = b.subarray(need)
          if (this.peek.length < 2) return
          if (this.peek[0] === 0x2d && this.peek[1] === 0x2d) {
            this.state = 'epilogue'
            return
          }
          this.header = this.peek
          this.peek = EMPTY
          this.state = 'headers'
          b = this.feedHeader(b)
          continue
        }
        case 'headers':
          b = this.feedHeader(b)
          continue
        case 'body':
          this.feedBody(b)
          return
      }
    }
  }

  /** Adds to the header block; returns the bytes after its end (the start of the value), or nothing while it is open. */
  private feedHeader (more: Buffer): Buffer {
    const searchFrom = Math.max(0, this.header.length - 3)
    const all = Buffer.concat([this.header, more])
    const at = all.indexOf(CRLFCRLF, searchFrom)
    if (at !== -1 && at <= this.maxHeaderBytes) {
      this.startBody(all.subarray(0, at))
      return all.subarray(at + 4)
    }
    if (all.length <= this.maxHeaderBytes) {
      this.header = all
      return EMPTY
    }
    // No CRLF CRLF within the limit. Go (Workhorse) also ends a header block at an LF-only blank
    // line; accept that only when the block already names the part, so the name is known.
    const region = all.subarray(0, this.maxHeaderBytes)
    const lf = lfBlankLine(region)
    if (lf !== null && NAME_PARAM_TEST.test(region.toString('latin1'))) {
      this.startBody(region.subarray(0, lf.start))
      return all.subarray(lf.end)
    }
    throw new IdentityError('MULTIPART_HEADER_TOO_LARGE', `multipart part header is over ${this.maxHeaderBytes} bytes`)
  }

  private startBody (block: Buffer): void {
    this.header = EMPTY
    this.state = 'body'
    this.part = readPartHeader(block)
  }

  private feedBody (b: Buffer): void {
    const part = this.part
    if (part === null || part.decided) return
    const room = CAPTURE_LIMIT - this.captured
    if (room > 0) {
      // Copied: a view would keep the whole (possibly large) chunk alive until the part ends.
      const take = Buffer.from(b.subarray(0, room))
      this.capture.push(take)
      this.captured += take.length
    }
    if (this.captured >= CAPTURE_LIMIT) {
      // Longer than any token: decide now on what was kept (it can only be refused or ignored).
      this.decide(Buffer.concat(this.capture, this.captured))
      return
    }
    if (part.credentialNames.length === 0 && !part.file && this.captured >= PREFIX.length) {
      const head = Buffer.concat(this.capture, this.captured)
      if (!head.subarray(0, PREFIX.length).equals(PREFIX)) {
        part.decided = true // an ordinary field
        this.capture = []
        this.captured = 0
      }
    }
  }

  /** The part before a delimiter (or the end of the body) is complete: decide on it now. */
  private endPart (): void {
    if (this.state === 'headers') {
      // The block never met CRLF CRLF. Go also ends it at an LF-only blank line.
      const block = this.header
      const lf = lfBlankLine(block)
      if (lf !== null) {
        this.startBody(block.subarray(0, lf.start))
        this.feedBody(block.subarray(lf.end))
      } else {
        this.startBody(block)
        // No end at all: Rack would read on past this delimiter and take a value we cannot
        // know here; a credential name is then decided on a value no token can equal.
        if (this.part!.credentialNames.length > 0) this.decide(block)
      }
    }
    const part = this.part
    if (this.state === 'body' && part !== null && !part.decided) {
      let value = Buffer.concat(this.capture, this.captured)
      // The CRLF before a delimiter belongs to the delimiter.
      if (value.length > 0 && value[value.length - 1] === 0x0a) value = value.subarray(0, value.length - (value[value.length - 2] === 0x0d ? 2 : 1))
      this.decide(value)
    }
    this.part = null
    this.capture = []
    this.captured = 0
    this.header = EMPTY
    this.peek = EMPTY
  }

  private decide (value: Buffer): void {
    const part = this.part!
    part.decided = true
    const text = value.toString('utf8')
    const names = part.credentialNames.length > 0 ? part.credentialNames : part.file ? [] : ['']
    for (const name of names) {
      const c = paramCredential(name, text, 'body')
      if (c !== null) this.onCredential(c)
    }
  }
}

const NAME_PARAM_TEST = new RegExp(NAME_PARAM.source, 'i')

function readPartHeader (block: Buffer): Part {
  const text = block.toString('latin1')
  const credentialNames: string[] = []
  for (const m of text.matchAll(NAME_PARAM)) {
    for (const name of nameVariants(m[1] === '*', m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3] ?? '')) {
      if (isCredentialParam(name)) credentialNames.push(name)
    }
  }
  return { credentialNames, file: FILENAME_PARAM.test(text), decided: false }
}

/** The readings of a parameter name a parser might make: as sent, and percent-decoded (RFC 5987 for `name*`). */
function nameVariants (extended: boolean, raw: string): string[] {
  const value = extended ? raw.replace(/^[^']*'[^']*'/, '') : raw
  const variants = [value]
  if (value.includes('%')) {
    variants.push(value.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))))
  }
  return variants
}

/** The first LF-only blank line (`\n\n` or `\n\r\n`) in a header block. */
function lfBlankLine (region: Buffer): { start: number, end: number } | null {
  for (let i = region.indexOf(0x0a); i !== -1 && i + 1 < region.length; i = region.indexOf(0x0a, i + 1)) {
    if (region[i + 1] === 0x0a) return { start: i, end: i + 2 }
    if (region[i + 1] === 0x0d && region[i + 2] === 0x0a) return { start: i, end: i + 3 }
  }
  return null
}
