// Worker threads: each gets the environment it was started with, a worker terminated mid-request
// leaves no broken cache behind (issue 12, defect 1), and the native runtime starts no thread at
// import and at most 2 workers when used (issue 12, leaner runtime). Each scenario runs in a child
// process of its own (fixtures/worker-child.mjs): the caches and the runtime are process-wide.
//
// Run: node --test __test__/workers.test.mjs

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hermeticEnv, makeProcessHermetic } from './emulator/index.mjs'
import { here, runNode } from './support.mjs'

makeProcessHermetic()

const FIXTURE = here('fixtures/worker-child.mjs')

async function run(mode) {
  const r = await runNode(FIXTURE, { env: hermeticEnv({ WIF_WORKER_MODE: mode }), timeoutMs: 30_000 })
  assert.equal(r.timedOut, false, r.stderr)
  assert.equal(r.code, 0, r.stderr)
  assert.ok(r.result, `${r.stdout}\n${r.stderr}`)
  return r.result
}

test('a worker started with its own env gets its own region and credentials', { timeout: 40_000 }, async () => {
  const r = await run('env')
  assert.deepEqual(r.main, { region: 'eu-west-1', accessKeyId: 'ASIAWORKERKEY0000001' })
  assert.deepEqual(r.worker, { region: 'ap-south-1', accessKeyId: 'ASIAWORKERKEY0000101' })
  assert.deepEqual(r.requests, [1, 1], 'each configuration asked its own endpoint once')
})

test('a worker terminated mid-request leaves the process-wide cache working for the next worker', { timeout: 40_000 }, async () => {
  const r = await run('terminate')
  assert.equal(r.second.error, undefined, JSON.stringify(r.second.error))
  assert.match(r.second.accessKeyId, /^ASIAWORKERKEY/)
  assert.equal(r.requests, 2, 'the hung attempt, then one retry that answered')
})

test('importing starts no thread; the first call starts at most 2 runtime workers and 2 blocking threads', { timeout: 40_000, skip: process.platform !== 'linux' && 'reads /proc/self/status' }, async () => {
  const r = await run('threads')
  assert.equal(r.afterImport - r.before, 0, `threads at import: ${JSON.stringify(r)}`)
  // 2 async workers, and the blocking pool's threads for the bounded reads of the profile files:
  // one per load in flight (the credentials and the region may load at once), let go after 10 s idle.
  assert.ok(r.afterCall - r.before <= 4, `threads after the first call: ${JSON.stringify(r)}`)
})

test('EKS IRSA configured only in the env of a worker reaches AWS STS at the AWS_ENDPOINT_URL_STS of that env', { timeout: 40_000 }, async () => {
  const r = await run('irsa-env')
  assert.deepEqual(r.osEnv, [], 'the OS environment must not configure IRSA or an AWS STS endpoint')
  assert.equal(r.worker.error, undefined, JSON.stringify(r.worker.error))
  assert.equal(r.worker.region, 'eu-central-1')
  assert.equal(r.issuedBy, 'web-identity')
  assert.deepEqual(r.sts, [
    { action: 'AssumeRoleWithWebIdentity', role: 'arn:aws:iam::123456789012:role/worker-irsa-role', session: 'worker-session', token: 'worker-projected-sa-jwt' },
  ])
  assert.equal(r.proxied, 0, 'nothing may head for the regional AWS STS host')
})
