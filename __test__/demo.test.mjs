// The README's quick start runs `npm run demo` (examples/demo.mjs): the whole flow on the local
// emulator, supplier → AwsClient → BigQuery, then the native fetcher, BigQuery through
// authClient() and a Cloud Run call with an ID token, then a Node ADC client in another process
// (`new GoogleAuth()`, only GCE_METADATA_HOST/IP) through fetcher.serveMetadata(). This runs it as a user would and checks that
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
  // which BigQuery's authClient() reuses and the ID token shares (one generateIdToken). The ADC
  // client of step 8 adds none: the metadata server answers its token request from the fetcher's
  // cache (the token of step 5, still valid for about an hour), and the metadata server's own
  // requests never reach the emulator.
  assert.deepEqual(seen, { container: 1, sts: 2, iam: 2, bigquery: 2, iamIdToken: 1, cloudRun: 1 })
  assert.match(run.stdout, /HTTP 200 \{"service":"reports"/)
  // Step 8: gal's Compute client (ADC through GCE_METADATA_HOST) got the fetcher's token, and the
  // exchange count it prints is the one of steps 5-7.
  assert.match(run.stdout, /^ {4}new GoogleAuth\(\)\.getAccessToken\(\) in another process: client Compute$/m)
  assert.match(run.stdout, /^ {4}access token: ya29\.\S{3}…\(\d+ chars\) from the metadata server: the fetcher's cached token$/m)
  assert.match(run.stdout, /^ {4}exchanges so far: STS 2 {2}IAM 2 \(the metadata server answered from the cache of step 5: no new exchange\)$/m)
})
