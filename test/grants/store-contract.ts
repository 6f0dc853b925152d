// The behaviour every GrantStore must have, run against each implementation (memory, file,
// Redis single node, Redis Cluster). `open()` gives two handles on the same data: a writer and a
// reader (one object for the memory store, two connections for Redis), so "another replica
// sees it" is part of the contract.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AuditEvent, GrantStore, InvalidationEvent, NamespaceAuditEvent } from '../../src/grants/store.ts'
import type { ProjectGrants } from '../../src/grants/model.ts'
import { eventually } from '../helpers/eventually.ts'
import { GrantsStoreUnavailableError, GrantsValidationError, GrantsVersionConflictError } from '../../src/grants/errors.ts'

export interface StoreHandles {
  readonly writer: GrantStore
  readonly reader: GrantStore
}

export function grantsFor (projectId: number, projectPath: string, extra: Partial<ProjectGrants> = {}): ProjectGrants {
  return {
    projectId,
    projectPath,
    inboundEnabled: true,
    entries: [
      { targetType: 'project', targetId: projectId + 1000, defaultPermissions: true, jobTokenPolicies: [], addedBy: { id: 7, username: 'root' }, createdAt: '2025-01-02T03:04:05Z' },
      { targetType: 'group', targetId: 55, targetPath: 'acme', defaultPermissions: false, jobTokenPolicies: ['read_packages', 'admin_jobs'], addedBy: null, createdAt: '2025-01-02T03:04:05.123Z' }
    ],
    ...extra
  }
}

/** Resolves with the first event on `store` that matches, or rejects after `ms`. */
export function nextEvent (store: GrantStore, match: (e: InvalidationEvent) => boolean, ms = 3000): Promise<InvalidationEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no matching invalidation within ${ms} ms`)) }, ms)
    const off = store.subscribe(event => {
      if (!match(event)) return
      clearTimeout(timer)
      off()
      resolve(event)
    })
  })
}

/** Collects every event on `store` until stopped. */
export function recordEvents (store: GrantStore): { events: InvalidationEvent[], stop: () => void } {
  const events: InvalidationEvent[] = []
  return { events, stop: store.subscribe(e => events.push(e)) }
}

/** What a contract test may ask of the store it opens. */
export interface StoreOptions {
  readonly auditEventsKept?: number
}

export function storeContract (name: string, open: (options?: StoreOptions) => Promise<StoreHandles>): void {
  test(`${name}: an unknown project is null, version 0, its path unresolved`, async () => {
    const { reader } = await open()
    assert.equal(await reader.get(4242), null)
    assert.equal(await reader.version(4242), 0)
    assert.equal(await reader.resolvePath('nobody/here'), null)
  })

  test(`${name}: put then get round-trips the document with version 1`, async () => {
    const { writer, reader } = await open()
    const doc = grantsFor(1, 'Acme/App', { packageRules: { npm: { read: true, write: 'maintainer' } } })
    assert.equal(await writer.put(doc), 1)
    const got = await reader.get(1)
    assert.ok(got !== null)
    assert.equal(got.version, 1)
    const { version, ...rest } = got
    assert.deepEqual(rest, doc)
    assert.equal(await reader.version(1), 1)
  })

  test(`${name}: paths resolve case-insensitively`, async () => {
    const { writer, reader } = await open()
    await writer.put(grantsFor(2, 'Acme/Sub/Tool'))
    for (const path of ['Acme/Sub/Tool', 'acme/sub/tool', 'ACME/SUB/TOOL']) assert.equal(await reader.resolvePath(path), 2, path)
    assert.equal(await reader.resolvePath('acme/sub'), null)
    assert.equal(await reader.resolvePath('not a path'), null)
  })

  test(`${name}: every write bumps the version and publishes it with the paths it touched`, async () => {
    const { writer, reader } = await open()
    await writer.put(grantsFor(3, 'acme/one'))
    const seen = nextEvent(reader, e => e.kind === 'project' && e.projectId === 3 && e.version === 2)
    const before = Date.now()
    assert.equal(await writer.put(grantsFor(3, 'acme/one', { inboundEnabled: false })), 2)
    const event = await seen
    assert.ok(event.kind === 'project')
    assert.deepEqual(event.paths, ['acme/one'])
    assert.ok(event.publishedAt >= before - 1000 && event.publishedAt <= Date.now() + 1000, 'publishedAt is the writer clock')
    assert.equal((await reader.get(3))?.inboundEnabled, false)
  })

  test(`${name}: a rename moves the path and names both paths in the invalidation`, async () => {
    const { writer, reader } = await open()
    await writer.put(grantsFor(4, 'acme/old-name'))
    const seen = nextEvent(reader, e => e.kind === 'project' && e.projectId === 4 && e.version === 2)
    await writer.put(grantsFor(4, 'acme/New-Name'))
    const event = await seen
    assert.ok(event.kind === 'project')
    assert.deepEqual([...event.paths].sort(), ['acme/new-name', 'acme/old-name'])
    assert.equal(await reader.resolvePath('acme/old-name'), null)
    assert.equal(await reader.resolvePath('acme/new-name'), 4)
  })

  test(`${name}: a conditional write on a stale version is refused and changes nothing`, async () => {
    const { writer, reader } = await open()
    await assert.rejects(writer.put(grantsFor(5, 'acme/five'), { expectedVersion: 3 }), GrantsVersionConflictError)
    assert.equal(await reader.get(5), null)
    assert.equal(await reader.resolvePath('acme/five'), null, 'a refused write leaves no path behind')
    const first = nextEvent(reader, e => e.kind === 'project' && e.projectId === 5 && e.version === 1)
    assert.equal(await writer.put(grantsFor(5, 'acme/five'), { expectedVersion: 0 }), 1)
    await first
    const events = recordEvents(reader)
    await assert.rejects(writer.put(grantsFor(5, 'acme/renamed'), { expectedVersion: 0 }), (err: unknown) =>
      err instanceof GrantsVersionConflictError && err.actual === 1 && err.expected === 0)
    assert.equal(await reader.resolvePath('acme/renamed'), null)
    assert.equal(await writer.put(grantsFor(5, 'acme/five', { inboundEnabled: false }), { expectedVersion: 1 }), 2)
    // Messages arrive in publish order: once version 2 is here, one from the refused write would be too.
    await eventually(() => events.events.some(e => e.kind === 'project' && e.version === 2), { message: 'the accepted write\'s invalidation' })
    events.stop()
    assert.deepEqual(events.events.map(e => e.kind === 'project' ? e.version : -1), [2], 'only the accepted write is published')
    assert.equal((await reader.get(5))?.version, 2)
  })

  test(`${name}: delete removes grants and path, bumps the version, and versions never repeat`, async () => {
    const { writer, reader } = await open()
    await writer.put(grantsFor(6, 'acme/six'))
    await writer.put(grantsFor(6, 'acme/six'))
    const seen = nextEvent(reader, e => e.kind === 'project' && e.projectId === 6 && e.version === 3)
    assert.equal(await writer.delete(6), true)
    const event = await seen
    assert.ok(event.kind === 'project')
    assert.deepEqual(event.paths, ['acme/six'])
    assert.equal(await reader.get(6), null)
    assert.equal(await reader.resolvePath('acme/six'), null)
    assert.equal(await reader.version(6), 3)
    assert.equal(await writer.delete(6), false)
    assert.equal(await writer.put(grantsFor(6, 'acme/six')), 4, 're-created project continues the version sequence')
  })

  test(`${name}: the version the import last wrote is kept with the document, behind later writes, gone with it`, async () => {
    const { writer, reader } = await open()
    await writer.put(grantsFor(16, 'acme/sixteen'))
    assert.equal((await reader.get(16))?.importedVersion, undefined)
    assert.equal(await writer.put(grantsFor(16, 'acme/sixteen'), { imported: true }), 2)
    assert.deepEqual([(await reader.get(16))?.version, (await reader.get(16))?.importedVersion], [2, 2])
    // Any other write leaves the record where it was.
    await writer.put(grantsFor(16, 'acme/sixteen', { inboundEnabled: false }))
    assert.deepEqual([(await reader.get(16))?.version, (await reader.get(16))?.importedVersion], [3, 2])
    assert.equal(await writer.delete(16), true)
    await writer.put(grantsFor(16, 'acme/sixteen'))
    assert.deepEqual([(await reader.get(16))?.version, (await reader.get(16))?.importedVersion], [5, undefined])
  })

  test(`${name}: an invalid document is refused before anything is stored`, async () => {
    const { writer, reader } = await open()
    const bad = { ...grantsFor(7, 'acme/seven'), entries: [{ targetType: 'user', targetId: -1 }] } as unknown as ProjectGrants
    await assert.rejects(writer.put(bad), GrantsValidationError)
    assert.equal(await reader.get(7), null)
    assert.equal(await reader.version(7), 0)
  })

  test(`${name}: concurrent writes to one project get distinct, consecutive versions`, async () => {
    const { writer, reader } = await open()
    const versions = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      writer.put(grantsFor(8, 'acme/eight', { inboundEnabled: i % 2 === 0 }))))
    assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1))
    assert.equal((await reader.get(8))?.version, 20)
  })

  test(`${name}: the last project written with a path owns it`, async () => {
    const { writer, reader } = await open()
    await writer.put(grantsFor(9, 'acme/shared'))
    await writer.put(grantsFor(10, 'acme/shared'))
    assert.equal(await reader.resolvePath('acme/shared'), 10)
    assert.equal((await reader.get(9))?.projectPath, 'acme/shared', 'the older project keeps its document')
  })

  test(`${name}: a document written again with its old path does not take the path from another project that claims it`, async () => {
    const { writer, reader } = await open()
    // 12 was renamed in GitLab and 13 took its path; 12's next write still names the old path
    // (a caller the gate could not ask GitLab for): 13 keeps the path.
    await writer.put(grantsFor(12, 'acme/taken'))
    await writer.put(grantsFor(13, 'Acme/Taken'))
    assert.equal(await reader.resolvePath('acme/taken'), 13)
    await writer.put(grantsFor(12, 'acme/taken', { inboundEnabled: false }))
    assert.equal(await reader.resolvePath('acme/taken'), 13, 'a write that brings no news of the path leaves it to the other project')
    // 12's path as GitLab gives it now: its own new path.
    await writer.put(grantsFor(12, 'acme/taken-old'))
    assert.equal(await reader.resolvePath('acme/taken-old'), 12)
    assert.equal(await reader.resolvePath('acme/taken'), 13)
    // In GitLab 13 moves away and 12 is renamed back, and 12 is written first: a change of path
    // is the newer news, and takes it from 13's record, not written since.
    await writer.put(grantsFor(12, 'acme/taken'))
    assert.equal(await reader.resolvePath('acme/taken'), 12)
    assert.equal(await reader.resolvePath('acme/taken-old'), null)
  })

  test(`${name}: a write refused on its version leaves the path to the project that claims it`, async () => {
    const { writer, reader } = await open()
    // 15 was renamed in GitLab to the path 14 was last written with; its first write loses a race.
    await writer.put(grantsFor(14, 'acme/claimed'))
    await writer.put(grantsFor(15, 'acme/fifteen'))
    await assert.rejects(writer.put(grantsFor(15, 'acme/claimed'), { expectedVersion: 0 }), GrantsVersionConflictError)
    assert.equal(await reader.resolvePath('acme/claimed'), 14, 'the refused write took nothing from 14')
    assert.equal(await reader.resolvePath('acme/fifteen'), 15)
    // Written again on the version it reads now: the change of path is the newer news.
    assert.equal(await writer.put(grantsFor(15, 'acme/claimed'), { expectedVersion: 1 }), 2)
    assert.equal(await reader.resolvePath('acme/claimed'), 15)
    assert.equal(await reader.resolvePath('acme/fifteen'), null)
  })

  test(`${name}: unsubscribed listeners hear nothing more`, async () => {
    const { writer, reader } = await open()
    const events = recordEvents(reader)
    const first = nextEvent(reader, e => e.kind === 'project' && e.projectId === 11)
    await writer.put(grantsFor(11, 'acme/eleven'))
    await first
    events.stop()
    const count = events.events.length
    const second = nextEvent(reader, e => e.kind === 'project' && e.projectId === 11 && e.version === 2)
    await writer.put(grantsFor(11, 'acme/eleven'))
    await second
    assert.equal(events.events.length, count)
    assert.ok(count >= 1)
  })

  test(`${name}: audit events are appended per project and read newest first, paged`, async () => {
    const { writer, reader } = await open()
    const event = (n: number, projectId = 31): AuditEvent => ({
      projectId, actor: n % 2 === 0 ? { kind: 'operator' } : { kind: 'user', id: n, username: `u${n}` }, action: 'update_job_token_permissions',
      before: { n: n - 1 }, after: { n, nested: { list: [n] } }, time: `2026-01-01T00:00:0${n}Z`, requestId: `req-${n}`
    })
    for (const n of [1, 2, 3, 4, 5]) await writer.appendAudit(event(n))
    await writer.appendAudit(event(9, 32))
    const first = await reader.readAudit(31, { offset: 0, limit: 2 })
    assert.equal(first.total, 5)
    assert.deepEqual(first.events, [event(5), event(4)])
    const last = await reader.readAudit(31, { offset: 4, limit: 2 })
    assert.deepEqual(last.events, [event(1)])
    assert.deepEqual(await reader.readAudit(31, { offset: 5, limit: 2 }), { total: 5, events: [] })
    assert.deepEqual(await reader.readAudit(33, { offset: 0, limit: 20 }), { total: 0, events: [] })
    assert.equal((await reader.readAudit(32, { offset: 0, limit: 20 })).total, 1)
  })

  test(`${name}: the audit logs keep the newest events, with the change that wrote each`, async () => {
    const { writer, reader } = await open({ auditEventsKept: 3 })
    const event = (n: number, projectId = 41): AuditEvent => ({
      projectId, actor: { kind: 'operator' }, action: 'update_job_token_permissions', before: null, after: { n }, time: '2026-01-01T00:00:00Z', requestId: `keep-${n}`
    })
    for (const n of [1, 2, 3, 4, 5]) await writer.appendAudit(event(n))
    assert.deepEqual(await reader.readAudit(41, { offset: 0, limit: 10 }), { total: 3, events: [event(5), event(4), event(3)] })
    // A write's own event, appended in the same step as the change.
    for (const n of [6, 7]) await writer.put(grantsFor(41, 'acme/kept'), { audit: event(n) })
    assert.deepEqual((await reader.readAudit(41, { offset: 0, limit: 10 })).events.map(e => e.requestId), ['keep-7', 'keep-6', 'keep-5'])
    const ns = (n: number): NamespaceAuditEvent => ({
      namespacePath: 'nskept', actor: { kind: 'operator' }, action: 'update_namespace_job_token_policies', before: null, after: { n }, time: '2026-01-01T00:00:00Z', requestId: `ns-keep-${n}`
    })
    for (const n of [1, 2, 3, 4]) await writer.appendNamespaceAudit(ns(n))
    await writer.putNamespace({ namespacePath: 'nskept', jobTokenPoliciesEnabled: true }, { audit: ns(5) })
    assert.deepEqual((await reader.readNamespaceAudit('nskept', { offset: 0, limit: 10 })).events.map(e => e.requestId), ['ns-keep-5', 'ns-keep-4', 'ns-keep-3'])
  })

  test(`${name}: root namespace settings round-trip by lower-cased path, versioned and published like projects`, async () => {
    const { writer, reader } = await open()
    assert.equal(await reader.getNamespace('nsone'), null)
    const seen = nextEvent(reader, e => e.kind === 'namespace' && e.namespace === 'nsone' && e.version === 1)
    const before = Date.now()
    assert.equal(await writer.putNamespace({ namespacePath: 'nsone', jobTokenPoliciesEnabled: false }), 1)
    const event = await seen
    assert.ok(event.kind === 'namespace' && event.publishedAt >= before - 1000 && event.publishedAt <= Date.now() + 1000)
    assert.deepEqual(await reader.getNamespace('nsone'), { namespacePath: 'nsone', jobTokenPoliciesEnabled: false, version: 1 })
    assert.deepEqual(await reader.getNamespace('NSone'), { namespacePath: 'nsone', jobTokenPoliciesEnabled: false, version: 1 }, 'read case-insensitively')
    assert.equal(await reader.get(1), null, 'no project document appears')
    assert.equal(await reader.resolvePath('nsone'), null)
    assert.equal(await writer.putNamespace({ namespacePath: 'nsone', jobTokenPoliciesEnabled: true }, { expectedVersion: 1 }), 2)
    await assert.rejects(writer.putNamespace({ namespacePath: 'nsone', jobTokenPoliciesEnabled: false }, { expectedVersion: 1 }), (err: unknown) =>
      err instanceof GrantsVersionConflictError && err.actual === 2)
    assert.equal((await reader.getNamespace('nsone'))?.jobTokenPoliciesEnabled, true, 'the refused write changed nothing')
    await assert.rejects(writer.putNamespace({ namespacePath: 'nsone/sub', jobTokenPoliciesEnabled: true }), GrantsValidationError)
    await assert.rejects(writer.putNamespace({ namespacePath: 'NsOne', jobTokenPoliciesEnabled: true }), GrantsValidationError, 'the key is given lower-cased')
    await assert.rejects(writer.putNamespace({ namespacePath: 'nstwo', jobTokenPoliciesEnabled: 'no' } as never), GrantsValidationError)
    assert.equal(await reader.getNamespace('nstwo'), null)
  })

  test(`${name}: deleting root namespace settings publishes, keeps the version sequence, and honours the expected version`, async () => {
    const { writer, reader } = await open()
    await writer.putNamespace({ namespacePath: 'nsdel', jobTokenPoliciesEnabled: false })
    await assert.rejects(writer.deleteNamespace('nsdel', { expectedVersion: 7 }), GrantsVersionConflictError)
    assert.equal((await reader.getNamespace('nsdel'))?.version, 1)
    const seen = nextEvent(reader, e => e.kind === 'namespace' && e.namespace === 'nsdel' && e.version === 2)
    assert.equal(await writer.deleteNamespace('NSDEL', { expectedVersion: 1 }), true)
    await seen
    assert.equal(await reader.getNamespace('nsdel'), null)
    assert.equal(await writer.deleteNamespace('nsdel'), false)
    assert.equal(await writer.putNamespace({ namespacePath: 'nsdel', jobTokenPoliciesEnabled: true }), 3, 're-created settings continue the version sequence')
  })

  test(`${name}: root namespace audit events are their own append-only log`, async () => {
    const { writer, reader } = await open()
    const event = (n: number, namespacePath = 'nsaudit'): NamespaceAuditEvent => ({
      namespacePath, actor: { kind: 'operator' }, action: 'update_namespace_job_token_policies',
      before: { job_token_policies_enabled: null }, after: { job_token_policies_enabled: n % 2 === 0 }, time: `2026-01-01T00:00:0${n}Z`, requestId: `ns-${n}`
    })
    for (const n of [1, 2, 3]) await writer.appendNamespaceAudit(event(n))
    await writer.appendNamespaceAudit(event(4, 'nsother'))
    assert.deepEqual(await reader.readNamespaceAudit('nsaudit', { offset: 0, limit: 2 }), { total: 3, events: [event(3), event(2)] })
    assert.deepEqual(await reader.readNamespaceAudit('nsaudit', { offset: 2, limit: 2 }), { total: 3, events: [event(1)] })
    assert.deepEqual(await reader.readNamespaceAudit('nsnone', { offset: 0, limit: 5 }), { total: 0, events: [] })
    assert.equal((await reader.readNamespaceAudit('nsother', { offset: 0, limit: 5 })).total, 1)
  })

  test(`${name}: health is ok and a closed store refuses to answer`, async () => {
    const { writer } = await open()
    const health = await writer.health()
    assert.equal(health.ok, true)
    assert.equal(health.subscribed, true)
    await writer.close()
    await assert.rejects(writer.get(1), GrantsStoreUnavailableError)
  })
}
