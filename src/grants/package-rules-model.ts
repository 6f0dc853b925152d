// Per package format rules of one project (set through the configuration API): whether job tokens
// may read a format's packages, and who may write or delete them. Formats not set keep GitLab's
// behaviour. The shape check and the "no misconfiguration" rules live here so that the model
// (every store write) and the admin API (with its own field names) apply the same ones.

import { isRecord } from '../plain-data.ts'
import type { ValidationIssue } from './errors.ts'
import { quoted } from '../text.ts'

/** `maintainer`: job tokens may not; `job_token_and_maintainer`: job tokens may, within their policies. */
export type PackageWriteLevel = 'maintainer' | 'job_token_and_maintainer'
export const PACKAGE_WRITE_LEVELS: readonly PackageWriteLevel[] = ['maintainer', 'job_token_and_maintainer']
export const PACKAGE_ACTIONS = ['read', 'write', 'delete'] as const

export interface PackageFormatRule {
  readonly read?: boolean
  readonly write?: PackageWriteLevel
  readonly delete?: PackageWriteLevel
}

/** Format name (as the catalog's `packageFormat`) → its rule. */
export type PackageRules = Readonly<Record<string, PackageFormatRule>>

/** What a format's rule means once GitLab's behaviour fills what is not set. */
export interface EffectivePackageRule {
  readonly read: boolean
  readonly write: PackageWriteLevel
  readonly delete: PackageWriteLevel
  /** Whether the project set anything for this format. */
  readonly configured: boolean
}

/** GitLab's own behaviour: job tokens read, write and delete within their allowlist policies. */
export const GITLAB_DEFAULT_RULE: EffectivePackageRule = Object.freeze({ read: true, write: 'job_token_and_maintainer', delete: 'job_token_and_maintainer', configured: false })

/** Unset `read` is true, unset `write` is GitLab's, unset `delete` follows `write`. */
export function effectiveRule (rule: PackageFormatRule | undefined): EffectivePackageRule {
  if (rule === undefined) return GITLAB_DEFAULT_RULE
  const write = rule.write ?? GITLAB_DEFAULT_RULE.write
  return { read: rule.read ?? GITLAB_DEFAULT_RULE.read, write, delete: rule.delete ?? write, configured: true }
}

/**
 * Checks a rules object and returns a normalized copy, or null with `issues` filled. Field
 * names in issues start with `prefix` (`packageRules` in the model, `package_registry` in the
 * API). `formats`, when given, is the list of formats the catalog knows.
 */
export function validatePackageRules (raw: unknown, prefix: string, issues: ValidationIssue[], formats?: readonly string[]): PackageRules | null {
  const before = issues.length
  const fail = (path: string, message: string): void => { issues.push({ path, message }) }
  if (!isRecord(raw)) {
    fail(prefix, 'must be an object mapping package formats to rules')
    return null
  }
  const out: Record<string, PackageFormatRule> = {}
  for (const [format, value] of Object.entries(raw)) {
    // A format that is none is quoted shortened (src/text.ts quoted), in its field's name too.
    if (formats !== undefined && !formats.includes(format)) {
      fail(`${prefix}.${quoted(format)}`, `"${quoted(format)}" is not a known package format (known: ${formats.join(', ')})`)
      continue
    }
    if (!/^[a-z][a-z_]*$/.test(format)) {
      fail(`${prefix}.${quoted(format)}`, `"${quoted(format)}" is not a package format name`)
      continue
    }
    const at = `${prefix}.${format}`
    if (!isRecord(value)) {
      fail(at, 'must be an object with read, write and/or delete')
      continue
    }
    const rule: { read?: boolean, write?: PackageWriteLevel, delete?: PackageWriteLevel } = {}
    const formatStart = issues.length
    for (const [action, setting] of Object.entries(value)) {
      if (action === 'read') {
        if (typeof setting === 'boolean') rule.read = setting
        else fail(`${at}.read`, 'must be true or false')
      } else if (action === 'write' || action === 'delete') {
        if (typeof setting === 'string' && (PACKAGE_WRITE_LEVELS as readonly string[]).includes(setting)) rule[action] = setting as PackageWriteLevel
        else fail(`${at}.${action}`, `must be one of ${PACKAGE_WRITE_LEVELS.map(l => `"${l}"`).join(', ')}`)
      } else {
        fail(`${at}.${quoted(action)}`, `"${quoted(action)}" is not a known action (known: ${PACKAGE_ACTIONS.join(', ')})`)
      }
    }
    // Combinations are checked for every well-formed format, so all problems show at once.
    if (issues.length === formatStart) checkCombination(rule, at, issues)
    out[format] = rule
  }
  return issues.length === before ? out : null
}

/**
 * Combinations that would be a misconfiguration, on the effective rule: job tokens writing or
 * deleting what they may not read, and deleting what they may not write.
 */
export function checkCombination (rule: PackageFormatRule, at: string, issues: ValidationIssue[]): void {
  const e = effectiveRule(rule)
  if (!e.read) {
    if (e.write === 'job_token_and_maintainer') issues.push({ path: `${at}.write`, message: 'lets job tokens write packages they may not read (read is false); set it to "maintainer"' })
    if (e.delete === 'job_token_and_maintainer') issues.push({ path: `${at}.delete`, message: 'lets job tokens delete packages they may not read (read is false); set it to "maintainer"' })
  }
  if (e.delete === 'job_token_and_maintainer' && e.write === 'maintainer') {
    issues.push({ path: `${at}.delete`, message: 'lets job tokens delete packages they may not write (write is "maintainer"); set it to "maintainer"' })
  }
}
