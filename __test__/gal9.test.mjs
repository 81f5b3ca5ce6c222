// google-auth-library 9 (9.7+ has AwsSecurityCredentialsSupplier) with @google-cloud/bigquery 7:
// the stack many apps still run (issue 20, section 5). .ci/run installs __test__/gal9 and runs the
// drop-in suite (emulator.test.mjs) and this file with WIF_TEST_DEPS_DIR pointing at it; without it,
// this file is skipped.
//
// What holds there: the drop-in supplier in AwsClient, with BigQuery 7 (emulator.test.mjs); and
// authClient(), which needs google-auth-library 10, is CONFIG_INVALID naming the version found,
// never a client that sends no usable token (a silent 401 from the API).
//
// Run: WIF_TEST_DEPS_DIR=$PWD/__test__/gal9/node_modules node --test __test__/gal9.test.mjs

import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { after, before, test } from 'node:test'
import { DEFAULT_CONFIG, makeProcessHermetic, startEmulator } from './emulator/index.mjs'
import { BigQuery, galVersion, googleAuthLibrary as gal } from './stack.mjs'
import { supplierAwsClient } from './support.mjs'

makeProcessHermetic()
const { ContainerAwsCredentialsSupplier, GoogleTokenFetcher } = createRequire(import.meta.url)('../index.js')
const skip = !galVersion.startsWith('9.') && `google-auth-library ${galVersion} here: set WIF_TEST_DEPS_DIR to __test__/gal9/node_modules`

let em
before(async () => {
  em = await startEmulator()
})
after(() => em?.close())

test("the article's app on google-auth-library 9 and BigQuery 7: AwsClient with the drop-in supplier reads a row as the service account", { skip, timeout: 30_000 }, async () => {
  process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = `${em.url}/v2/credentials/gal9`
  process.env.AWS_REGION = 'us-east-1'
  const authClient = supplierAwsClient(gal, { baseUrl: em.url, audience: DEFAULT_CONFIG.audience, serviceAccount: DEFAULT_CONFIG.serviceAccount, supplier: new ContainerAwsCredentialsSupplier() })
  const bigquery = new BigQuery({ projectId: 'my-project', location: 'US', authClient, apiEndpoint: em.url })
  const [rows] = await bigquery.query({ query: 'SELECT 1', location: 'US' })
  assert.equal(rows[0].principal, DEFAULT_CONFIG.serviceAccount)
  assert.deepEqual([em.count('container'), em.count('sts'), em.count('iam')], [1, 1, 1])
})

test('authClient() on google-auth-library 9: CONFIG_INVALID naming the version and the way out, never a client', { skip }, () => {
  const fetcher = new GoogleTokenFetcher({ audience: DEFAULT_CONFIG.audience, tokenUrl: `${em.url}/v1/token` })
  assert.throws(
    () => fetcher.authClient({ googleAuthLibrary: gal }),
    (e) => e.code === 'CONFIG_INVALID' && e.message.includes(`the one given is ${galVersion}`) && /ContainerAwsCredentialsSupplier/.test(e.hint),
  )
})
