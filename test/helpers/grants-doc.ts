// A project's allowlist document as the stores take it, for tests that write stores directly.

import { createInstanceSettings, validateProjectGrants, type ProjectGrants } from '../../src/grants/model.ts'

/** Project `projectId` at `projectPath`, letting in the projects `allowed` (default permissions). */
export function grantsDoc (projectId: number, projectPath: string, allowed: readonly number[] = [], extra: Partial<ProjectGrants> = {}): ProjectGrants {
  return validateProjectGrants({
    projectId,
    projectPath,
    inboundEnabled: true,
    entries: allowed.map(id => ({ targetType: 'project', targetId: id, defaultPermissions: true, jobTokenPolicies: [], addedBy: null, createdAt: '2026-01-01T00:00:00Z' })),
    ...extra
  }, { settings: createInstanceSettings() })
}
