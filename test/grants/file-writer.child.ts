// Child process for the crash test in memory-store.test.ts: writes grants to a file-backed
// memory store as fast as it can until it is killed. Large documents make each save take long
// enough for a SIGKILL to land in the middle of one.
import { createMemoryStore } from '../../src/grants/memory-store.ts'
import type { AllowlistEntry } from '../../src/grants/model.ts'

const file = process.argv[2]!
const store = await createMemoryStore({ file })
const entries: AllowlistEntry[] = Array.from({ length: 200 }, (_, i) => ({
  targetType: 'project', targetId: 10_000 + i, targetPath: `acme/consumer-${i}`, defaultPermissions: false,
  jobTokenPolicies: ['read_packages', 'read_jobs'], addedBy: { id: 1, username: 'root' }, createdAt: '2025-01-01T00:00:00Z'
}))
process.stdout.write('ready\n')
for (let n = 0; ; n++) {
  const projectId = 1 + (n % 40)
  await store.put({ projectId, projectPath: `acme/p${projectId}`, inboundEnabled: n % 2 === 0, entries })
  if (n === 40) process.stdout.write('written\n')
}
