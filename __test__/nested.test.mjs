// Client libraries that carry their own google-auth-library (issue 20, section 4), on the real npm
// stack of __test__/nested: an app on google-auth-library 10 with @google-cloud/storage 8.4, which
// needs google-auth-library 11, so npm nests a copy of its own under storage. Storage wraps any
// authClient in *its* GoogleAuth, whose getCredentials() recognises a client only by `instanceof`
// its own classes.
//
//   * A client built on the app's google-auth-library 10 (authClient(), or the drop-in AwsClient
//     with our supplier): storage's getCredentials() probes the GCE metadata server and throws
//     "Unable to find credentials in current environment", so getSignedUrl() fails.
//   * Built on storage's own copy (authClient({ googleAuthLibrary }), taken as doctor's fix says;
//     or that copy's AwsClient): getCredentials() names the service account, and getSignedUrl() (v4)
//     is signed by the emulator's signBlob.
//   * `aws-wif-supplier doctor`, run in the app's folder, lists both copies and warns.
//
// Nothing leaves loopback: the metadata probe goes to the emulator (GCE_METADATA_HOST), where it gets
// a 404 and is logged; HTTP(S)_PROXY is a loopback proxy without routes (anything sent to it counts,
// and nothing may be); and every connection this process opens from JavaScript is checked by
// loopbackOnly() (support.mjs), which refuses any other destination.
//
// Run (.ci/run does, after `npm ci --prefix __test__/nested`): WIF_TEST_DEPS_DIR=$PWD/__test__/nested/node_modules
//   __test__/nested/node_modules/.bin/node --test __test__/nested.test.mjs
// Without that stack (a fresh clone, `npm test`), every test here is skipped, with the reason.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { after, before, beforeEach, describe, test } from 'node:test'
import { DEFAULT_CONFIG, hermeticEnv, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { startProxy } from './support/proxy.mjs'
import { assertSignedAs, here, impersonationUrl, loopbackOnly, rejection, runNode, signedUrlV4, supplierAwsClient } from './support.mjs'

makeProcessHermetic()
const { ContainerAwsCredentialsSupplier, GoogleTokenFetcher } = createRequire(import.meta.url)('../index.js')

const APP = here('nested')
const SA = DEFAULT_CONFIG.serviceAccount
const NO_CREDENTIALS = /^Unable to find credentials in current environment/
const TEST_TIMEOUT = { timeout: 30_000 }

/** The stack's modules, as the app in __test__/nested resolves them, or the reason this file is skipped. */
function loadStack() {
  const wanted = join(APP, 'node_modules')
  if (process.env.WIF_TEST_DEPS_DIR !== wanted) return { skip: `set WIF_TEST_DEPS_DIR=${wanted} after \`npm ci --prefix __test__/nested\` and run on its Node 22 (.ci/run does)` }
  try {
    // The app's require, and storage's own copy taken the way doctor's fix says.
    const appRequire = createRequire(join(APP, 'package.json'))
    const storageEntry = appRequire.resolve('@google-cloud/storage')
    const appGal = appRequire('google-auth-library')
    const storageGal = appRequire('node:module').createRequire(storageEntry)('google-auth-library')
    const version = (from) => JSON.parse(readFileSync(join(dirname(from), 'package.json'), 'utf8')).version
    const versions = {
      app: version(appRequire.resolve('google-auth-library/package.json')),
      storage: version(createRequire(storageEntry).resolve('google-auth-library/package.json')),
    }
    if (!versions.app.startsWith('10.') || !versions.storage.startsWith('11.') || appGal === storageGal) {
      return { skip: `__test__/nested does not have the nested layout (the app's google-auth-library ${versions.app}, storage's ${versions.storage}): run npm ci --prefix __test__/nested` }
    }
    return { appGal, storageGal, versions, Storage: appRequire('@google-cloud/storage').Storage, skip: false }
  } catch (e) {
    return { skip: `__test__/nested is not installed (npm ci --prefix __test__/nested): ${e.message}` }
  }
}
const stack = loadStack()

let em
let proxy
let guard
const saved = {}
let seq = 0

before(async () => {
  if (stack.skip) return
  em = await startEmulator()
  proxy = await startProxy()
  const vars = {
    AWS_REGION: 'us-east-1',
    // gcp-metadata's probe goes to the emulator (a 404 there), never to 169.254.169.254 or a host name.
    GCE_METADATA_HOST: new URL(em.url).host,
    HTTPS_PROXY: proxy.url,
    HTTP_PROXY: proxy.url,
    NO_PROXY: '127.0.0.1,localhost',
  }
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k]
    process.env[k] = v
  }
  guard = loopbackOnly()
})
beforeEach(() => {
  if (stack.skip) return
  em.reset()
  proxy.reset()
  // Each test starts from no metadata server verdict (gcp-metadata keeps one per process).
  stack.storageGal.gcpMetadata.resetIsAvailableCache()
  // A FULL_URI path of its own: cold AWS credential and token caches.
  process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = `${em.url}/v2/credentials/nested-${process.pid}-${++seq}`
})
after(async () => {
  guard?.restore()
  for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]
  else process.env[k] = v
  await proxy?.close()
  await em?.close()
})

/**
 * Nothing went anywhere but the emulator: no request to the proxy in this test, and no connection
 * elsewhere since the file started (clients keep connections alive across tests, so the guard's
 * record is the whole file's).
 */
function assertStayedLocal() {
  assert.equal(proxy.counts().total, 0, `something tried to leave through the proxy: ${JSON.stringify(proxy.counts())}`)
  assert.ok(guard.destinations.length > 0, 'the guard saw the connections')
  assert.deepEqual([...new Set(guard.destinations)], [new URL(em.url).host], 'every connection went to the emulator')
}

const fetcherOptions = () => ({ audience: DEFAULT_CONFIG.audience, tokenUrl: `${em.url}/v1/token`, serviceAccountImpersonationUrl: impersonationUrl(em.url, SA) })

/** The two ways to give Storage our credentials, each built on the google-auth-library `gal`. */
const CLIENTS = {
  'authClient()': (gal) => {
    const fetcher = new GoogleTokenFetcher(fetcherOptions())
    return { client: fetcher.authClient({ googleAuthLibrary: gal }), saToken: async () => (await fetcher.getAccessToken()).token }
  },
  'AwsClient with the drop-in supplier': (gal) => {
    const client = supplierAwsClient(gal, { baseUrl: em.url, audience: DEFAULT_CONFIG.audience, serviceAccount: SA, supplier: new ContainerAwsCredentialsSupplier() })
    return { client, saToken: async () => (await client.getAccessToken()).token }
  },
}

const storageOf = (authClient) => new stack.Storage({ projectId: 'my-project', authClient, apiEndpoint: em.url })

describe(`an app on google-auth-library ${stack.versions?.app ?? 10} with @google-cloud/storage (its own google-auth-library ${stack.versions?.storage ?? 11})`, { skip: stack.skip }, () => {
  for (const [name, build] of Object.entries(CLIENTS)) {
    test(`${name} on the app's copy: storage's getCredentials() finds no credentials after probing the metadata server, getSignedUrl() fails; nothing leaves loopback`, TEST_TIMEOUT, async () => {
      const { client } = build(stack.appGal)
      assert.ok(client instanceof stack.appGal.AuthClient)
      assert.ok(!(client instanceof stack.storageGal.AuthClient), "not an instance of storage's classes")
      const storage = storageOf(client)
      assert.match((await rejection(storage.authClient.getCredentials())).message, NO_CREDENTIALS)
      assert.match((await rejection(signedUrlV4(storage, em))).message, NO_CREDENTIALS)
      // The probe: gcp-metadata's GET of the instance folder, answered 404 by the emulator.
      const probes = em.requests.filter((r) => r.route === 'unknown')
      assert.deepEqual(probes.map((r) => [r.method, r.path, r.headers['metadata-flavor'], r.status]), [['GET', '/computeMetadata/v1/instance', 'Google', 404]])
      assert.equal(em.count('iamSignBlob'), 0, 'nothing was signed')
      assertStayedLocal()
    })

    test(`${name} on storage's own copy (doctor's fix): getCredentials() names the service account, getSignedUrl() (v4) is signed by signBlob`, TEST_TIMEOUT, async () => {
      const { client, saToken } = build(stack.storageGal)
      assert.ok(client instanceof stack.storageGal.BaseExternalAccountClient)
      const storage = storageOf(client)
      assert.deepEqual(await storage.authClient.getCredentials(), { client_email: SA, universe_domain: 'googleapis.com' })
      const url = await signedUrlV4(storage, em)
      assertSignedAs(em, url, { serviceAccount: SA, token: await saToken() })
      assert.equal(em.count('unknown'), 0, 'no metadata probe')
      assertStayedLocal()
    })
  }

  test("doctor, run in the app's folder: both copies, a warning, and the fix this file applies", TEST_TIMEOUT, async () => {
    const env = hermeticEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials`, AWS_REGION: 'us-east-1' })
    const json = await runNode(here('../bin/aws-wif-supplier.js'), { env, args: ['doctor', '--json'], cwd: APP })
    assert.equal(json.code, 0, json.stdout + json.stderr)
    const { application, copies, warning } = JSON.parse(json.stdout).googleAuthLibrary
    assert.deepEqual(application, { dir: APP, name: 'aws-wif-supplier-test-nested' })
    assert.deepEqual(copies, [
      { version: stack.versions.app, path: 'node_modules/google-auth-library', usedBy: ['the application'] },
      { version: stack.versions.storage, path: 'node_modules/@google-cloud/storage/node_modules/google-auth-library', usedBy: [`@google-cloud/storage@${JSON.parse(readFileSync(join(APP, 'node_modules/@google-cloud/storage/package.json'), 'utf8')).version}`] },
    ])
    assert.match(warning.message, /^2 copies of google-auth-library/)
    assert.ok(warning.fixes[0].includes("googleAuthLibrary: require('node:module').createRequire(require.resolve('@google-cloud/storage'))('google-auth-library')"), warning.fixes[0])
    assert.ok(warning.fixes[1].includes(`"google-auth-library": "^${stack.versions.storage}"`) && warning.fixes[1].includes('"overrides": { "google-auth-library": "$google-auth-library" }'), warning.fixes[1])
    const human = await runNode(here('../bin/aws-wif-supplier.js'), { env, args: ['doctor'], cwd: APP })
    assert.equal(human.code, 0, human.stdout + human.stderr)
    assert.ok(human.stdout.includes(`  application   ${APP} (aws-wif-supplier-test-nested): the working directory; run doctor in the application's folder\n`), human.stdout)
    assert.ok(human.stdout.includes(`  auth library  ${stack.versions.storage} at node_modules/@google-cloud/storage/node_modules/google-auth-library, used by @google-cloud/storage@`), human.stdout)
    assert.ok(human.stdout.includes(`WARN auth_library   ${warning.message}\n     fix: ${warning.fixes[0]}\n     fix: ${warning.fixes[1]}\n`), human.stdout)
  })
})
