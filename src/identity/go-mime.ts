// Go's mime.ParseMediaType and mime.FormatMediaType (src/mime/mediatype.go), over a header value
// read as latin1 (one character a byte, as Go's strings are bytes). Workhorse names each part of
// its upload routes' multipart bodies with the first and writes the part's Content-Disposition
// again for Rails with the second (internal/upload/rewrite.go, parseAndNormalizeContentDisposition),
// so the line Rack reads a part's name from is goNormalizedDisposition's.

const TSPECIALS = '()<>@,;:\\"/[]?='

function isTokenChar (c: string): boolean {
  const code = c.charCodeAt(0)
  return code > 0x20 && code < 0x7f && !TSPECIALS.includes(c)
}

function isToken (s: string): boolean {
  if (s === '') return false
  for (const c of s) if (!isTokenChar(c)) return false
  return true
}

/**
 * The length of the white space (Go's unicode.IsSpace, decoded from UTF-8) at `i`, or 0: ASCII
 * \t \n \v \f \r and space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F,
 * U+205F, U+3000.
 */
function spaceAt (s: string, i: number): number {
  const c = s.charCodeAt(i)
  if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) return 1
  const c1 = s.charCodeAt(i + 1)
  const c2 = s.charCodeAt(i + 2)
  if (c === 0xc2 && (c1 === 0x85 || c1 === 0xa0)) return 2
  if (c === 0xe1 && c1 === 0x9a && c2 === 0x80) return 3
  if (c === 0xe2 && c1 === 0x80 && ((c2 >= 0x80 && c2 <= 0x8a) || c2 === 0xa8 || c2 === 0xa9 || c2 === 0xaf)) return 3
  if (c === 0xe2 && c1 === 0x81 && c2 === 0x9f) return 3
  if (c === 0xe3 && c1 === 0x80 && c2 === 0x80) return 3
  return 0
}

/** Past the white space at `i`. */
function skipSpace (s: string, i: number): number {
  for (let n; i < s.length && (n = spaceAt(s, i)) > 0;) i += n
  return i
}

function trimLeftSpace (s: string): string {
  return s.slice(skipSpace(s, 0))
}

/** The end of the token at `i`. */
function tokenEnd (s: string, i: number): number {
  while (i < s.length && isTokenChar(s[i]!)) i++
  return i
}

function consumeToken (v: string): [string, string] {
  const end = tokenEnd(v, 0)
  return [v.slice(0, end), v.slice(end)]
}

/** A parameter value at `i` (a token or a quoted string): the value and where it ends, or null. */
function consumeValue (s: string, i: number): { value: string, end: number } | null {
  if (i >= s.length) return null
  if (s[i] !== '"') {
    const end = tokenEnd(s, i)
    return end === i ? null : { value: s.slice(i, end), end }
  }
  const out: string[] = []
  let from = i + 1
  for (let j = i + 1; j < s.length; j++) {
    const c = s[j]!
    if (c === '"') {
      out.push(s.slice(from, j))
      return { value: out.join(''), end: j + 1 }
    }
    if (c === '\\' && j + 1 < s.length && TSPECIALS.includes(s[j + 1]!)) {
      out.push(s.slice(from, j))
      from = ++j
      continue
    }
    if (c === '\r' || c === '\n') return null
  }
  return null
}

/** A `; key=value` parameter at `i`: its name (lower case), value and end, or null. */
function consumeMediaParam (s: string, i: number): { key: string, value: string, end: number } | null {
  i = skipSpace(s, i)
  if (s[i] !== ';') return null
  i = skipSpace(s, i + 1)
  const keyEnd = tokenEnd(s, i)
  if (keyEnd === i) return null
  const key = asciiLower(s.slice(i, keyEnd))
  i = skipSpace(s, keyEnd)
  if (s[i] !== '=') return null
  i = skipSpace(s, i + 1)
  // Go: an empty value that consumed nothing is no parameter; a quoted "" is one.
  const value = consumeValue(s, i)
  return value === null ? null : { key, value: value.value, end: value.end }
}

function percentHexUnescape (s: string): string | null {
  if (/%(?![0-9a-fA-F]{2})/.test(s)) return null
  return s.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
}

function decode2231Enc (v: string): string | null {
  const first = v.indexOf("'")
  const second = first === -1 ? -1 : v.indexOf("'", first + 1)
  if (second === -1) return null
  // Lowered as Go lowers it: `us-asc\u0130i` is us-ascii to Go.
  const charset = goLower(v.slice(0, first))
  if (charset !== 'us-ascii' && charset !== 'utf-8') return null
  return percentHexUnescape(v.slice(second + 1))
}

function checkMediaTypeDisposition (s: string): boolean {
  const [type, rest] = consumeToken(s)
  if (type === '') return false
  if (rest === '') return true
  if (!rest.startsWith('/')) return false
  const [subtype, rest2] = consumeToken(rest.slice(1))
  return subtype !== '' && rest2 === ''
}

function trimSpace (s: string): string {
  let out = trimLeftSpace(s)
  for (;;) {
    const n = out.length
    if (n >= 1 && out.charCodeAt(n - 1) < 0x80 && spaceAt(out, n - 1) === 1) out = out.slice(0, -1)
    else if (n >= 2 && spaceAt(out, n - 2) === 2) out = out.slice(0, -2)
    else if (n >= 3 && spaceAt(out, n - 3) === 3) out = out.slice(0, -3)
    else return out
  }
}

/** Go's strings.ToLower where only ASCII letters matter (a latin1 letter is a UTF-8 byte to Go). */
function asciiLower (s: string): string {
  return s.replace(/[A-Z]+/g, m => m.toLowerCase())
}

/**
 * Go's strings.ToLower where the result is compared with ASCII: it maps every rune of a non-ASCII
 * string, and U+0130 (İ) and U+212A (Kelvin sign) are the two that become ASCII letters (`i`,
 * `k`). Any other non-ASCII byte left makes the text equal no ASCII word either way.
 */
function goLower (s: string): string {
  return asciiLower(s).replace(/\xc4\xb0/g, 'i').replace(/\xe2\x84\xaa/g, 'k')
}

/** Go's mime.ParseMediaType: the type and parameters, or null where Go answers an error. */
export function goParseMediaType (value: string): { readonly type: string, readonly params: ReadonlyMap<string, string> } | null {
  const semicolon = value.indexOf(';')
  const base = semicolon === -1 ? value : value.slice(0, semicolon)
  // Lowered rune by rune (goLower): `\u212A` is the type `k` to Go.
  const type = trimSpace(goLower(base))
  if (!checkMediaTypeDisposition(type)) return null
  const params = new Map<string, string>()
  const continuation = new Map<string, Map<string, string>>()
  for (let i = base.length; i < value.length;) {
    i = skipSpace(value, i)
    if (i >= value.length) break
    const param = consumeMediaParam(value, i)
    if (param === null) {
      // Trailing semicolons are no error.
      if (trimSpace(value.slice(i)) === ';') break
      return null
    }
    let map = params
    const star = param.key.indexOf('*')
    if (star !== -1) {
      const baseName = param.key.slice(0, star)
      map = continuation.get(baseName) ?? new Map()
      continuation.set(baseName, map)
    }
    const known = map.get(param.key)
    if (known !== undefined && known !== param.value) return null
    map.set(param.key, param.value)
    i = param.end
  }
  for (const [key, pieces] of continuation) {
    const single = pieces.get(key + '*')
    if (single !== undefined) {
      const decoded = decode2231Enc(single)
      if (decoded !== null) params.set(key, decoded)
      continue
    }
    let buf = ''
    let valid = false
    for (let n = 0; ; n++) {
      const simple = pieces.get(`${key}*${n}`)
      if (simple !== undefined) {
        valid = true
        buf += simple
        continue
      }
      const encoded = pieces.get(`${key}*${n}*`)
      if (encoded === undefined) break
      valid = true
      buf += (n === 0 ? decode2231Enc(encoded) : percentHexUnescape(encoded)) ?? ''
    }
    if (valid) params.set(key, buf)
  }
  return { type, params }
}

/** Go's mime.FormatMediaType of a type (`major` or `major/sub`) and its parameters; '' where Go gives ''. */
export function goFormatMediaType (type: string, params: ReadonlyMap<string, string>): string {
  // ParseMediaType takes a Content-Disposition type with a subtype too (`form-data/x`): Go writes
  // both tokens, split at the first '/'.
  const slash = type.indexOf('/')
  const major = slash === -1 ? type : type.slice(0, slash)
  const sub = slash === -1 ? null : type.slice(slash + 1)
  if (!isToken(major) || (sub !== null && !isToken(sub))) return ''
  let out = asciiLower(type)
  // Go sorts the names as byte strings: latin1 code units compare alike.
  for (const name of [...params.keys()].sort((a, b) => a < b ? -1 : a > b ? 1 : 0)) {
    const value = params.get(name)!
    if (!isToken(name)) return ''
    out += '; ' + asciiLower(name)
    if (/[^\t -~]/.test(value)) {
      out += "*=utf-8''"
      for (const c of value) {
        const code = c.charCodeAt(0)
        out += code <= 0x20 || code >= 0x7f || "*'%".includes(c) || TSPECIALS.includes(c) ? '%' + code.toString(16).toUpperCase().padStart(2, '0') : c
      }
    } else if (isToken(value)) {
      out += '=' + value
    } else {
      out += '="' + value.replace(/["\\]/g, '\\$&') + '"'
    }
  }
  return out
}

/**
 * The Content-Disposition value Workhorse writes for Rails in place of `value`, or null where Go
 * gives the part no name (Workhorse then drops the part). `parsed`: goParseMediaType(value), when known.
 */
export function goNormalizedDisposition (value: string, parsed = goParseMediaType(value)): string | null {
  if (parsed === null || (parsed.params.get('name') ?? '') === '') return null
  return goFormatMediaType(parsed.type, parsed.params)
}
