// Which instance token prefix GitLab puts before `glcbt-` (token-shape.ts), said once at start so
// an operator sees what the gate assumed: GATE_INSTANCE_TOKEN_PREFIX when set, else GitLab's
// `instance_token_prefix` from `GET /api/v4/application/settings` (administrators only). The
// answer changes no decision: job tokens with any instance prefix are recognised regardless.
// A failed read is logged and the start goes on.

import { createGitlabClient, GitlabUnavailable, type GitlabClient } from '../gitlab/client.ts'
import { isRecognisedInstancePrefix } from './token-shape.ts'

export type InstancePrefixSource = 'setting' | 'gitlab' | 'none'

export interface InstancePrefixReport {
  /** The prefix, or null when there is none (or it is not known). */
  readonly prefix: string | null
  readonly source: InstancePrefixSource
  /** Why the source is `none`. */
  readonly reason?: string
  /** True when GitLab was asked and did not tell. */
  readonly readFailed?: boolean
}

interface PrefixLogger {
  info (fields: object, message: string): void
  warn (fields: object, message: string): void
  error (fields: object, message: string): void
}

/**
 * GitLab's `instance_token_prefix`: `prefix` null when unset or empty (or on a GitLab that has
 * no such setting); `reason` when GitLab did not tell.
 */
export async function readInstanceTokenPrefix (gitlab: GitlabClient): Promise<{ readonly prefix: string | null } | { readonly reason: string }> {
  let answer
  try {
    answer = await gitlab.get('/api/v4/application/settings', { endpoint: 'application_settings', as: 'service' })
  } catch (err) {
    if (err instanceof GitlabUnavailable) return { reason: err.message }
    throw err
  }
  if (answer.status === 401 || answer.status === 403) return { reason: `GitLab answered ${answer.status}: the service token is not an administrator's` }
  if (answer.status !== 200 || answer.body === undefined) return { reason: `GitLab answered ${answer.status} without a settings object` }
  const value = answer.body.instance_token_prefix
  if (value === undefined || value === null || value === '') return { prefix: null }
  if (typeof value !== 'string') return { reason: 'instance_token_prefix is not a string' }
  return { prefix: value }
}

export interface AnnounceOptions {
  /** GATE_INSTANCE_TOKEN_PREFIX as configured: undefined when unset, '' for "none". */
  readonly configured: string | undefined
  /**
   * The gate's GitLab client, whose calls /metrics counts (endpoint `application_settings`); it
   * stays open. Without it, one is made from the options below for the one call and closed.
   */
  readonly gitlab?: GitlabClient
  /** GitLab's base URL (GATE_UPSTREAM_URL). */
  readonly upstreamUrl: string
  /** GitLab's relative URL root (GATE_RELATIVE_URL_ROOT), e.g. `/gitlab`. */
  readonly relativeUrlRoot?: string
  /** GATE_SERVICE_TOKEN; without it GitLab is not asked. */
  readonly serviceToken: string | undefined
  readonly timeoutMs?: number
  readonly logger: PrefixLogger
}

/** Finds the instance prefix (setting, else GitLab) and logs it once; never throws. */
export async function announceInstanceTokenPrefix (options: AnnounceOptions): Promise<InstancePrefixReport> {
  const report = await findInstanceTokenPrefix(options)
  const fields = {
    instance_token_prefix: report.prefix,
    instance_token_prefix_source: report.source,
    ...(report.reason === undefined ? {} : { reason: report.reason })
  }
  const said = report.prefix === null ? 'no instance token prefix' : `instance token prefix ${JSON.stringify(report.prefix)}`
  const from = report.source === 'setting' ? 'GATE_INSTANCE_TOKEN_PREFIX' : report.source === 'gitlab' ? "GitLab's application settings" : 'nowhere'
  const message = `${said} (from ${from}); job tokens glcbt-... and <any prefix>-glcbt-... are recognised regardless`
  if (report.prefix !== null && !isRecognisedInstancePrefix(report.prefix)) {
    // Cannot happen with a configured prefix (the configuration refuses it).
    options.logger.error(fields, `${message}, except this prefix's: GitLab allows characters the gate does not expect; its job tokens would not be checked`)
  } else if (report.readFailed === true) {
    options.logger.warn(fields, message)
  } else {
    options.logger.info(fields, message)
  }
  return report
}

async function findInstanceTokenPrefix (options: AnnounceOptions): Promise<InstancePrefixReport> {
  if (options.configured !== undefined) return { prefix: options.configured === '' ? null : options.configured, source: 'setting' }
  if (options.gitlab !== undefined ? !options.gitlab.hasServiceToken : options.serviceToken === undefined || options.serviceToken === '') {
    return { prefix: null, source: 'none', reason: 'GATE_INSTANCE_TOKEN_PREFIX and GATE_SERVICE_TOKEN are unset' }
  }
  if (options.gitlab !== undefined) return await readFrom(options.gitlab)
  let gitlab: GitlabClient | undefined
  try {
    gitlab = createGitlabClient({ url: options.upstreamUrl, relativeUrlRoot: options.relativeUrlRoot ?? '', serviceToken: options.serviceToken, timeoutMs: options.timeoutMs ?? 5_000, connections: 1 })
    return await readFrom(gitlab)
  } catch (err) {
    return { prefix: null, source: 'none', reason: `reading GitLab's application settings failed: ${(err as Error).name}`, readFailed: true }
  } finally {
    await gitlab?.close().catch(() => {})
  }
}

async function readFrom (gitlab: GitlabClient): Promise<InstancePrefixReport> {
  try {
    const read = await readInstanceTokenPrefix(gitlab)
    return 'reason' in read ? { prefix: null, source: 'none', reason: `reading GitLab's application settings failed: ${read.reason}`, readFailed: true } : { prefix: read.prefix, source: 'gitlab' }
  } catch (err) {
    return { prefix: null, source: 'none', reason: `reading GitLab's application settings failed: ${(err as Error).name}`, readFailed: true }
  }
}
