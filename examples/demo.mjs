// The main job, end to end, on this project's own local emulator:
//
//   container credentials endpoint ─► ContainerAwsCredentialsSupplier ─► google-auth-library AwsClient
//   ─► Google STS (verifies the SigV4 subject token with an independent signer) ─► IAM generateAccessToken
//   ─► @google-cloud/bigquery query ─► rows
//
// then the same flow all native (GoogleTokenFetcher, and its authClient() for BigQuery), and a call
// to the emulator's stand-in Cloud Run service with an ID token of the service account
// (fetcher.idTokenClient(url)): the service accepts only an ID token whose `aud` is its URL.
// Last, the fetcher serves the GCE metadata protocol (fetcher.serveMetadata()), and a separate Node
// process that knows only Application Default Credentials (`new GoogleAuth()`, no AWS variables,
// only GCE_METADATA_HOST and GCE_METADATA_IP) gets its token from it.
//
// It is the reference app of the README, unchanged but for the endpoints: everything listens on
// 127.0.0.1, and the environment is what EKS Pod Identity would inject (a FULL_URI and a token
// file), pointed at the emulator. Run: `npm run demo`.

import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureAddon } from '../__test__/support/ensure-addon.mjs'
import { startEmulator, hermeticEnv, makeProcessHermetic } from '../__test__/emulator/index.mjs'

const require = createRequire(import.meta.url)
const step = (n, text) => console.log(`\n[${n}] ${text}`)
const mask = (s) => (s ? `${s.slice(0, 8)}…(${s.length} chars)` : String(s))

ensureAddon()
const em = await startEmulator()
const dir = mkdtempSync(join(tmpdir(), 'aws-wif-demo-'))
try {
  step(1, `local emulator listening at ${em.url} (container endpoint, Google STS, IAM Credentials, BigQuery)`)
  const tokenFile = join(dir, 'eks-pod-identity-token')
  writeFileSync(tokenFile, 'demo-pod-identity-token\n') // a trailing newline, as Kubernetes volumes often have
  em.config.containerAuthToken = 'demo-pod-identity-token'
  makeProcessHermetic({
    AWS_CONTAINER_CREDENTIALS_FULL_URI: `${em.url}/v1/credentials`,
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
    AWS_REGION: 'us-east-1',
  })
  console.log('    AWS_CONTAINER_CREDENTIALS_FULL_URI     =', process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI)
  console.log('    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE =', tokenFile)
  console.log('    AWS_REGION                             =', process.env.AWS_REGION)

  const { ContainerAwsCredentialsSupplier } = require('..')
  const { AwsClient } = require('google-auth-library')
  const { BigQuery } = require('@google-cloud/bigquery')

  step(2, 'new ContainerAwsCredentialsSupplier()')
  const supplier = new ContainerAwsCredentialsSupplier()
  console.log('    region      :', await supplier.getAwsRegion())
  const creds = await supplier.getAwsSecurityCredentials()
  console.log('    accessKeyId :', creds.accessKeyId, '  secretAccessKey:', mask(creds.secretAccessKey), '  token:', mask(creds.token))
  console.log('    util.inspect(supplier):', require('node:util').inspect(supplier))

  step(3, 'google-auth-library AwsClient.getAccessToken() with our supplier')
  const authClient = new AwsClient({
    audience: em.config.audience,
    subject_token_type: 'urn:ietf:params:aws:token-type:aws4_request',
    token_url: `${em.url}/v1/token`,
    service_account_impersonation_url: `${em.url}/v1/projects/-/serviceAccounts/${em.config.serviceAccount}:generateAccessToken`,
    aws_security_credentials_supplier: supplier,
  })
  const { token } = await authClient.getAccessToken()
  const sts = em.requests.find((r) => r.route === 'sts')
  console.log('    STS verdict :', sts.verdict.ok ? `signature verified by @smithy/signature-v4 (signed: ${sts.verdict.signedHeaders})` : sts.verdict.reason)
  console.log('    access token:', mask(token), `(impersonating ${em.config.serviceAccount})`)

  step(4, "new BigQuery({ projectId, location: 'US', authClient }).query(...)")
  const bigquery = new BigQuery({ projectId: 'my-project', location: 'US', authClient, apiEndpoint: em.url })
  const [rows] = await bigquery.query({ query: 'SELECT greeting, principal, n FROM demo', location: 'US' })
  console.log('    rows:', JSON.stringify(rows))

  step(5, 'the native GoogleTokenFetcher: the same flow without google-auth-library')
  const { GoogleTokenFetcher } = require('..')
  const fetcher = new GoogleTokenFetcher({
    audience: em.config.audience,
    tokenUrl: `${em.url}/v1/token`,
    serviceAccountImpersonationUrl: `${em.url}/v1/projects/-/serviceAccounts/${em.config.serviceAccount}:generateAccessToken`,
  })
  const native = await fetcher.getAccessToken()
  console.log('    access token:', mask(native.token), ' expires', new Date(native.expiresAt).toISOString())
  const verdicts = em.requests.filter((r) => r.route === 'sts').map((r) => (r.verdict.ok ? 'verified' : r.verdict.reason))
  console.log('    STS verdicts:', verdicts.join(', '), '(google-auth-library, then native)')
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < 100000; i++) await fetcher.getAccessToken()
  console.log(`    cached getAccessToken(): ${Number(process.hrtime.bigint() - t0) / 100000} ns/op`)

  step(6, "new BigQuery({ projectId, authClient: fetcher.authClient() }): BigQuery with no JavaScript STS or IAM")
  const nativeBigquery = new BigQuery({ projectId: 'my-project', location: 'US', authClient: fetcher.authClient(), apiEndpoint: em.url })
  const [nativeRows] = await nativeBigquery.query({ query: 'SELECT greeting, principal, n FROM demo', location: 'US' })
  console.log('    rows:', JSON.stringify(nativeRows))
  console.log('    exchanges so far: STS', em.count('sts'), ' IAM', em.count('iam'), '(authClient() reused the fetcher\'s cached token)')

  step(7, 'fetcher.idTokenClient(url).request({ url }): a Cloud Run service (the emulator\'s stand-in) with an ID token')
  const serviceUrl = `${em.url}/run/reports`
  const run = fetcher.idTokenClient(serviceUrl, { includeEmail: true })
  const { status, data } = await run.request({ url: `${serviceUrl}/daily` })
  console.log('    HTTP', status, JSON.stringify(data))
  const idToken = await fetcher.getIdToken(serviceUrl, { includeEmail: true })
  console.log('    ID token    :', mask(idToken.token), ' expires', new Date(idToken.expiresAt).toISOString())
  console.log('    exchanges so far: STS', em.count('sts'), ' generateIdToken', em.count('iamIdToken'), '(the ID token reused the federated token of step 5)')

  step(8, 'fetcher.serveMetadata(): a Node process with only GCE_METADATA_HOST gets its token through Application Default Credentials')
  const metadata = await fetcher.serveMetadata()
  try {
    const hostPort = `${metadata.host}:${metadata.port}`
    // No AWS variable and no credential file (HOME is empty): ADC can only find the metadata server.
    // Run under the tests' loopback guard: nothing but loopback can be reached.
    const env = hermeticEnv({ GCE_METADATA_HOST: hostPort, GCE_METADATA_IP: hostPort, HOME: dir, APPDATA: dir })
    const adc = `const { GoogleAuth } = require(process.argv[1])
const auth = new GoogleAuth()
Promise.all([auth.getClient(), auth.getAccessToken()]).then(([client, token]) => console.log(JSON.stringify({ client: client.constructor.name, token })))`
    const guard = fileURLToPath(new URL('../__test__/fixtures/loopback-only.cjs', import.meta.url))
    const args = ['--require', guard, '-e', adc, require.resolve('google-auth-library')]
    const child = await new Promise((resolve, reject) =>
      execFile(process.execPath, args, { env, timeout: 30_000 }, (err, stdout, stderr) => (err || stderr.includes('LOOPBACK-GUARD') ? reject(new Error(`the ADC client failed: ${err?.message ?? ''}\n${stderr}`)) : resolve(JSON.parse(stdout)))),
    )
    console.log('    GCE_METADATA_HOST = GCE_METADATA_IP =', hostPort, `(${metadata.url})`)
    console.log("    new GoogleAuth().getAccessToken() in another process: client", child.client)
    const same = child.token === (await fetcher.getAccessToken()).token
    console.log('    access token:', mask(child.token), same ? "from the metadata server: the fetcher's cached token" : 'NOT the fetcher\'s token')
    if (!same) throw new Error('the ADC client did not get the fetcher\'s token')
    console.log('    exchanges so far: STS', em.count('sts'), ' IAM', em.count('iam'), '(the metadata server answered from the cache of step 5: no new exchange)')
  } finally {
    await metadata.close()
  }

  step(9, 'what the emulator saw')
  const counts = new Map()
  for (const r of em.requests) counts.set(r.route, (counts.get(r.route) ?? 0) + 1)
  for (const [route, n] of counts) console.log(`    ${route.padEnd(10)} ${n} request(s)`)
  console.log('\nOK: the whole Workload Identity Federation flow ran natively against the local emulator.')
} finally {
  rmSync(dir, { recursive: true, force: true })
  await em.close()
}
