// undici checks the name of every request header it does not know before it writes it: it
// lower-cases the name and matches it against the token grammar. Names in its table of well-known
// headers (lib/core/constants.js, `headerNameLowerCasedRecord`: name -> lower-case name) skip both.
// The gate adds the same four names to every forwarded request, constants that are valid tokens,
// so they go in that table: 3,540 instructions per forwarded request fewer, about 2% of the allowed
// path (bench/README.md, twenty-fifth round). Header values are checked as before.
//
// The one place that relies on undici internals, checked against undici 7.30.2 (UNDICI_CHECKED):
// Request's processHeader() reads `headerNameLowerCasedRecord[name]` and, when it holds the name,
// takes it for the lower-case name and checks nothing more of it; util's headerNameToString() reads
// the same table. The guard is test/gate/undici-names.test.ts (the table as found, the names
// arriving, bad values still refused, and a failure when the installed undici is not the minor
// version checked). Should the table be missing, nothing is added: only the cost changes.

import { createRequire } from 'node:module'

/** The undici version the contract above was checked against. */
export const UNDICI_CHECKED = '7.30.2'

/**
 * The names upstreamHeaders() adds to every forwarded request that undici does not know. Lower
 * case, valid tokens: nothing a client chooses goes in the table.
 */
export const GATE_HEADER_NAMES: readonly string[] = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-request-id']

/** undici's table, or null when it is not what the contract above says. */
export function undiciHeaderTable (): Record<string, string> | null {
  try {
    const constants = createRequire(import.meta.url)('undici/lib/core/constants.js') as { headerNameLowerCasedRecord?: unknown }
    const table = constants.headerNameLowerCasedRecord
    if (typeof table !== 'object' || table === null || Object.getPrototypeOf(table) !== null) return null
    const known = table as Record<string, unknown>
    return known['content-type'] === 'content-type' && known['Content-Type'] === 'content-type' ? known as Record<string, string> : null
  } catch {
    return null
  }
}

/** Adds GATE_HEADER_NAMES to undici's table; returns whether it could. Idempotent. */
export function teachUndiciGateHeaders (): boolean {
  const table = undiciHeaderTable()
  if (table === null) return false
  for (const name of GATE_HEADER_NAMES) table[name] ??= name
  return true
}
