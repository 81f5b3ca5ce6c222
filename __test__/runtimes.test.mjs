// Bun and Deno (issue 20, section 3): the smoke scenarios of __test__/runtimes/smoke.mjs, run under
// each runtime against the loopback emulator this process starts, with a FULL_URI on it for the AWS
// credentials. The runtimes, google-auth-library 11 and BigQuery 9 come from npm
// (__test__/runtimes/package.json, pinned); .ci/run installs them and runs this file. Without them
// (`npm test` in a fresh clone) each runtime's tests are skipped, saying how to install them; a
// runtime that is installed but does not start fails, and so does a missing one when
// WIF_TEST_RUNTIMES_REQUIRED=1 (.ci/run).
//
// Bun: the supplier in google-auth-library's AwsClient with BigQuery, authClient() with BigQuery, and
// worker_threads sharing the process-wide cache, terminated, then the main thread and one more
// worker (the addon teardown path, where Bun has had Node-API crashes). Deno (`deno run -A`, npm
// packages from the node_modules beside the script): the package alone (supplier, access token, ID
// token), and the same BigQuery and worker scenarios.
//
// Run: npm ci --prefix __test__/runtimes && WIF_TEST_RUNTIMES_REQUIRED=1 node --test __test__/runtimes.test.mjs

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, test } from 'node:test'
import { DEFAULT_CONFIG, hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { here, runCommand } from './support.mjs'

makeProcessHermetic()

const DIR = here('runtimes')
const SMOKE = join(DIR, 'smoke.mjs')
const SA = DEFAULT_CONFIG.serviceAccount
const RUN_TIMEOUT_MS = 60_000
const TEST = { timeout: RUN_TIMEOUT_MS + 10_000 }
/** Set by .ci/run, which installs the runtimes: a missing one fails instead of skipping. */
const REQUIRED = process.env.WIF_TEST_RUNTIMES_REQUIRED === '1'
/**
 * No update checks, no crash reports or telemetry (nothing may leave the machine), and no cache
 * written to the home directory (Bun's transpiler cache is off; Deno's DENO_DIR is a temporary one).
 */
const QUIET = { DENO_NO_UPDATE_CHECK: '1', DO_NOT_TRACK: '1', BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0' }

/**
 * The runtime `name` from __test__/runtimes/node_modules/.bin: {bin, version}; {skip} when it is not
 * installed (unless REQUIRED); {problem} when it is installed but does not start (a failure).
 */
function findRuntime(name) {
  const bin = join(DIR, 'node_modules', '.bin', name)
  if (!existsSync(bin)) {
    const why = `${name} is not installed: npm ci --prefix __test__/runtimes (as .ci/run does)`
    return REQUIRED ? { problem: why } : { skip: why }
  }
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000, env: hermeticEnv(QUIET) })
  if (probe.status !== 0) return { bin, problem: `${bin} --version failed (${probe.error?.message ?? `exit ${probe.status}, signal ${probe.signal}`}): ${probe.stderr}` }
  return { bin, version: /\d+\.\d+\.\d+\S*/.exec(probe.stdout)?.[0] ?? probe.stdout.trim() }
}

const RUNTIMES = {
  // --no-install: never auto-install a missing package from a registry.
  bun: { ...findRuntime('bun'), args: (scenario) => ['--no-install', SMOKE, scenario] },
  // The package.json beside smoke.mjs makes it an npm project: Deno resolves npm packages from its
  // node_modules (manual: never installs), reads nothing remote (--cached-only), writes no deno.lock.
  deno: { ...findRuntime('deno'), args: (scenario) => ['run', '-A', '--node-modules-dir=manual', '--cached-only', '--no-lock', SMOKE, scenario] },
}

let em
let denoDir
let seq = 0

before(async () => {
  em = await startEmulator()
  denoDir = mkdtempSync(join(tmpdir(), 'aws-wif-deno-dir-'))
})
beforeEach(() => em.reset())
after(async () => {
  await em?.close()
  if (denoDir) rmSync(denoDir, { recursive: true, force: true })
})

/** Run one scenario under `runtime`; returns its JSON value (the run must exit 0, on time). */
async function smoke(runtime, scenario) {
  const rt = RUNTIMES[runtime]
  assert.equal(rt.problem, undefined)
  const env = hermeticEnv({
    ...QUIET,
    DENO_DIR: denoDir,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v2/credentials/${runtime}-${scenario}-${++seq}`,
    AWS_REGION: 'us-east-1',
    WIF_EMULATOR_URL: em.url,
    WIF_SERVICE_ACCOUNT: SA,
    WIF_AUDIENCE: DEFAULT_CONFIG.audience,
  })
  const run = await runCommand(rt.bin, rt.args(scenario), { env, cwd: DIR, timeoutMs: RUN_TIMEOUT_MS })
  const output = `${run.stdout}\n${run.stderr}`
  assert.equal(run.timedOut, false, `timed out after ${RUN_TIMEOUT_MS} ms\n${output}`)
  assert.equal(run.signal, null, `killed by ${run.signal}\n${output}`)
  assert.equal(run.result?.error, undefined, output)
  assert.equal(run.code, 0, output)
  assert.match(run.result.runtime, new RegExp(`^${runtime} `))
  return run.result.value
}

const counts = (...routes) => routes.map((r) => em.count(r))

/** An access token the emulator issued to the service account. */
function assertServiceAccountToken(token) {
  assert.equal(em.googleTokens.get(token)?.principal, SA, 'not a service account token the emulator issued')
}

/** The scenarios both runtimes run, with what the emulator must have seen. */
function commonTests(runtime) {
  test('ContainerAwsCredentialsSupplier: region, and credentials from the FULL_URI (the second supplier from the process-wide cache)', TEST, async () => {
    const v = await smoke(runtime, 'supplier')
    assert.equal(v.region, 'us-east-1')
    assert.ok(em.issued.has(v.accessKeyId), `${v.accessKeyId} was not issued by the emulator`)
    assert.deepEqual([v.hasSecret, v.hasToken, v.sameKey], [true, true, true])
    assert.deepEqual(counts('container'), [1])
  })

  test('GoogleTokenFetcher: a native access token (the second fetcher from the cache), and getIdToken', TEST, async () => {
    const v = await smoke(runtime, 'token')
    assertServiceAccountToken(v.token)
    assert.equal(v.sameToken, true)
    assert.ok(v.expiresAt > Date.now())
    const claims = em.idTokens.get(v.idToken)
    assert.deepEqual({ aud: claims?.aud, email: claims?.email }, { aud: 'https://svc.example', email: SA }, 'not an ID token the emulator issued')
    assert.ok(v.idExpiresAt > Date.now())
    assert.deepEqual(counts('container', 'sts', 'iam', 'iamIdToken'), [1, 1, 1, 1])
  })

  test("the supplier in google-auth-library's AwsClient, with BigQuery: two queries read rows as the service account", TEST, async () => {
    const v = await smoke(runtime, 'awsclient-bigquery')
    assert.deepEqual(v.principals, [SA, SA])
    assert.deepEqual(counts('container', 'sts', 'iam', 'bigquery'), [1, 1, 1, 2], 'one exchange for both queries')
  })

  test('fetcher.authClient() with BigQuery: two queries read rows as the service account', TEST, async () => {
    const v = await smoke(runtime, 'authclient-bigquery')
    assert.equal(v.isAuthClient, true, "authClient() is not an AuthClient of the script's google-auth-library")
    assert.deepEqual(v.principals, [SA, SA])
    assert.deepEqual(counts('container', 'sts', 'iam', 'bigquery'), [1, 1, 1, 2], 'one exchange for both queries')
  })

  test('worker_threads share the process-wide cache; after they are terminated the main thread and a new worker still get tokens', TEST, async () => {
    const v = await smoke(runtime, 'workers')
    assert.equal(v.first.length, 4)
    for (const r of [...v.first, ...v.later]) assert.equal(r.error, undefined, JSON.stringify(r.error))
    const token = v.first[0].token
    assertServiceAccountToken(token)
    assert.deepEqual(new Set([...v.first, ...v.later].map((r) => r.token)), new Set([token]), 'one token for every worker')
    assert.deepEqual(new Set([...v.first, ...v.later].map((r) => r.accessKeyId)).size, 1, 'one AWS key for every worker')
    assert.equal(v.afterTeardown, token, 'the main thread, after the teardown: from the cache')
    assert.equal(em.idTokens.get(v.idToken)?.aud, 'https://after-teardown.example', 'the main thread, after the teardown: a new exchange')
    assert.deepEqual(counts('container', 'sts', 'iam', 'iamIdToken'), [1, 1, 1, 1])
  })
}

for (const runtime of ['bun', 'deno']) {
  const { skip, version } = RUNTIMES[runtime]
  describe(`${runtime}${version ? ` ${version}` : ''}`, { skip }, () => commonTests(runtime))
}
