// The shapes shared by the identity stage: what a job token resolves to, the resolver
// interface both resolvers implement, and the one error type they throw.

import { errors, GateError, type ErrorCode } from '../errors.ts'
import type { GitlabClient } from '../gitlab/client.ts'
import type { Waiter } from '../waiters.ts'

/** GitLab refuses longer tokens (app/finders/ci/auth_job_finder.rb); so do we, before any work. */
export const MAX_TOKEN_BYTES = 8192

export interface JobIdentity {
  readonly jobId: number
  /** The job project: the project whose pipeline runs the job (GitLab's token "source"). */
  readonly jobProjectId: number
  readonly jobProjectPath: string
  /** The job project's ancestor groups, nearest first (subgroup, its parent, ..., root). */
  readonly ancestorGroupIds: readonly number[]
  /** The user the job runs as. */
  readonly userId: number
  /** The job's pipeline (`pipeline.id` of GitLab's `GET /job`), when the resolver knows it: finds another job of the same pipeline. */
  readonly pipelineId?: number
  /** Epoch milliseconds after which the token is no longer valid, when the token says so. */
  readonly expiresAt?: number
}

export interface JobResolver {
  /**
   * Resolves a job token to its job's identity; rejects with IdentityError, never allows on doubt.
   * `waiter`: the request's client (none: one that never goes); a resolution whose every waiter
   * has gone is given up, its GitLab calls with it, and rejects with LookupDropped.
   */
  resolve (token: string, waiter?: Waiter): Promise<JobIdentity>
  /**
   * Hot path: the identity of a token resolved before and still cached, without a promise;
   * undefined otherwise (then resolve()). `connection`: the client connection the token came on.
   */
  cached? (token: string, connection?: object | null): JobIdentity | undefined
}

/** A resolver that holds connections or timers; close() releases them. */
export interface ClosableJobResolver extends JobResolver {
  close (): Promise<void>
  /** Counters for metrics (src/metrics.ts), read at scrape time. */
  stats? (): IdentityStats
  /** The GitLab client it calls, shared or its own: the gate counts its calls in /metrics once. */
  readonly gitlab?: GitlabClient
}

export interface IdentityStats {
  readonly tokenCache: { readonly hits: number, readonly negativeHits: number, readonly misses: number, readonly singleFlightWaits: number }
  /** Introspection calls keyed `endpoint:outcome` (endpoint job|project|group; outcome ok|rejected|failed|unavailable). */
  readonly introspection: Readonly<Record<string, number>>
  readonly jwksRefreshes: number
  readonly jwksFailures: number
}

/**
 * The failure of a stage in this module: a GateError whose status and public message come from
 * the errors table. The message is for logs and never contains the token.
 */
export class IdentityError extends GateError {
  constructor (code: ErrorCode, message: string = code, options?: { cause?: unknown }) {
    super(code, message, { ...options, publicMessage: errors[code].message })
    this.name = 'IdentityError'
  }
}

/** Failures that say nothing about the token: never remembered as a verdict on it. */
export function isTransient (code: ErrorCode): boolean {
  return code === 'IDENTITY_UPSTREAM_UNAVAILABLE' || code === 'IDENTITY_LOOKUP_FAILED'
}

