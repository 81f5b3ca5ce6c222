// The README's quick start runs `npm run demo` (examples/demo.mjs): the whole flow on the local
// emulator, supplier → AwsClient → BigQuery, then the native fetcher, BigQuery through
// authClient() and a Cloud Run call with an ID token. This runs it as a user would and checks that
// it ends well and that the exchanges it prints are the ones the design promises.
//
// Run: node --test __test__/demo.test.mjs

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hermeticEnv } from './emulator/index.mjs'
import { here, runNode } from './support.mjs'

test('npm run demo: the whole flow on the emulator, with the exchanges the design promises', { timeout: 120_000 }, async () => {
  const run = await runNode(here('../examples/demo.mjs'), { env: hermeticEnv(), timeoutMs: 110_000 })
  assert.equal(run.code, 0, `the demo failed:\n${run.stdout}\n${run.stderr}`)
  assert.match(run.stdout, /^OK: the whole Workload Identity Federation flow ran natively against the local emulator\.$/m)
  const seen = Object.fromEntries([...run.stdout.matchAll(/^ {4}(\w+) +(\d+) request\(s\)$/gm)].map((m) => [m[1], Number(m[2])]))
  // One container request for the process; one STS + IAM for AwsClient, one for the native fetcher,
  // which BigQuery's authClient() reuses and the ID token shares (one generateIdToken).
  assert.deepEqual(seen, { container: 1, sts: 2, iam: 2, bigquery: 2, iamIdToken: 1, cloudRun: 1 })
  assert.match(run.stdout, /HTTP 200 \{"service":"reports"/)
})
