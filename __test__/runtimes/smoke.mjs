// Runtime smoke scenarios for Bun and Deno (issue 20, section 3), run by __test__/runtimes.test.mjs:
//
//   bun smoke.mjs <scenario>            deno run -A smoke.mjs <scenario>
//
// Each run does one scenario against the loopback emulator the test started (its URL in
// WIF_EMULATOR_URL; AWS credentials from the AWS_CONTAINER_CREDENTIALS_FULL_URI the test sets) and
// prints one JSON line; the test asserts the values and what the emulator counted. This file sits
// beside the package.json of the Bun + Deno + google-auth-library 11 + BigQuery 9 stack, which makes
// it an npm project for Deno: Deno then loads google-auth-library and BigQuery from the node_modules
// `npm ci` installed (--node-modules-dir=manual says so explicitly). Bun resolves node_modules as
// Node does.
//
//   supplier            ContainerAwsCredentialsSupplier: region and credentials, twice (cached)
//   token               GoogleTokenFetcher: getAccessToken() twice (cached), getIdToken()
//   awsclient-bigquery  google-auth-library's AwsClient with the supplier, BigQuery on the emulator
//   authclient-bigquery fetcher.authClient() (google-auth-library found from this script), BigQuery
//   workers             worker_threads sharing the process-wide cache, terminated, then the main
//                       thread again, then one more worker (the addon teardown path)

import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

// The package as a local path (the repository root): Bun requires index.js (CommonJS), Deno imports
// index.mjs (the `import` entry of the package's exports). Workers require index.js on both.
const require = createRequire(import.meta.url)
const INDEX = require.resolve('../../index.js')
const { ContainerAwsCredentialsSupplier, GoogleTokenFetcher } = globalThis.Deno ? await import('../../index.mjs') : require(INDEX)

const url = process.env.WIF_EMULATOR_URL
const SA = process.env.WIF_SERVICE_ACCOUNT
const AUDIENCE = process.env.WIF_AUDIENCE
const fetcherOptions = {
  audience: AUDIENCE,
  tokenUrl: `${url}/v1/token`,
  serviceAccountImpersonationUrl: `${url}/v1/projects/-/serviceAccounts/${SA}:generateAccessToken`,
}

const runtime = () => (globalThis.Bun ? `bun ${globalThis.Bun.version}` : globalThis.Deno ? `deno ${globalThis.Deno.version.deno}` : `node ${process.version}`)

/** One BigQuery query on the emulator with `authClient`: the principal of each row. */
async function queryPrincipal(authClient) {
  const { BigQuery } = require('@google-cloud/bigquery')
  const bigquery = new BigQuery({ projectId: 'my-project', location: 'US', authClient, apiEndpoint: url })
  const [rows] = await bigquery.query({ query: 'SELECT greeting, principal, n FROM emulator', location: 'US' })
  return rows.map((r) => r.principal)
}

const scenarios = {
  async supplier() {
    const supplier = new ContainerAwsCredentialsSupplier()
    const region = await supplier.getAwsRegion()
    const first = await supplier.getAwsSecurityCredentials()
    const second = await new ContainerAwsCredentialsSupplier().getAwsSecurityCredentials()
    return { region, accessKeyId: first.accessKeyId, hasSecret: typeof first.secretAccessKey === 'string' && first.secretAccessKey.length > 0, hasToken: typeof first.token === 'string', sameKey: second.accessKeyId === first.accessKeyId }
  },

  async token() {
    const fetcher = new GoogleTokenFetcher(fetcherOptions)
    const first = await fetcher.getAccessToken()
    const second = await new GoogleTokenFetcher(fetcherOptions).getAccessToken()
    const id = await fetcher.getIdToken('https://svc.example', { includeEmail: true })
    return { token: first.token, expiresAt: first.expiresAt, sameToken: second.token === first.token, idToken: id.token, idExpiresAt: id.expiresAt }
  },

  async 'awsclient-bigquery'() {
    const { AwsClient } = require('google-auth-library')
    const authClient = new AwsClient({
      audience: AUDIENCE,
      subject_token_type: 'urn:ietf:params:aws:token-type:aws4_request',
      token_url: `${url}/v1/token`,
      service_account_impersonation_url: fetcherOptions.serviceAccountImpersonationUrl,
      aws_security_credentials_supplier: new ContainerAwsCredentialsSupplier(),
    })
    return { principals: [...(await queryPrincipal(authClient)), ...(await queryPrincipal(authClient))] }
  },

  async 'authclient-bigquery'() {
    const authClient = new GoogleTokenFetcher(fetcherOptions).authClient()
    const { AuthClient } = require('google-auth-library')
    return { isAuthClient: authClient instanceof AuthClient, principals: [...(await queryPrincipal(authClient)), ...(await queryPrincipal(authClient))] }
  },

  async workers() {
    const COUNT = 4
    // The main thread holds its own instance of the addon all along (workers come and go beside it).
    const main = new GoogleTokenFetcher(fetcherOptions)
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { ContainerAwsCredentialsSupplier, GoogleTokenFetcher } = require(workerData.index)
      const fetcher = new GoogleTokenFetcher(workerData.options)
      const supplier = new ContainerAwsCredentialsSupplier()
      parentPort.once('message', () =>
        Promise.all([fetcher.getAccessToken(), supplier.getAwsSecurityCredentials()]).then(
          ([t, c]) => parentPort.postMessage({ token: t.token, accessKeyId: c.accessKeyId }),
          (e) => parentPort.postMessage({ error: { code: e.code, message: e.message } }),
        ),
      )
      parentPort.postMessage('ready')
    `
    const start = () => new Worker(source, { eval: true, workerData: { index: INDEX, options: fetcherOptions } })
    const next = (w) =>
      new Promise((resolve, reject) => {
        w.once('message', resolve)
        w.once('error', reject)
      })
    /** Start `n` workers, release them together once all have set up, collect, terminate. */
    const round = async (n) => {
      const workers = Array.from({ length: n }, start)
      try {
        await Promise.all(workers.map(next)) // 'ready': each has loaded the addon and built its objects
        const results = Promise.all(workers.map(next))
        for (const w of workers) w.postMessage('go')
        return await results
      } finally {
        await Promise.all(workers.map((w) => w.terminate()))
      }
    }
    const first = await round(COUNT)
    // Every worker has been torn down: the main thread's addon instance and the process-wide cache
    // must still answer, from the cache and with new exchanges (an ID token is never cached yet).
    const afterTeardown = await main.getAccessToken()
    const idToken = await main.getIdToken('https://after-teardown.example')
    const later = await round(1)
    return { first, afterTeardown: afterTeardown.token, idToken: idToken.token, later }
  },
}

const name = process.argv[2]
if (!Object.hasOwn(scenarios, name)) {
  console.error(`unknown scenario "${name}"; one of: ${Object.keys(scenarios).join(', ')}`)
  process.exit(2)
}
try {
  process.stdout.write(`${JSON.stringify({ runtime: runtime(), value: await scenarios[name]() })}\n`)
} catch (e) {
  process.stdout.write(`${JSON.stringify({ runtime: runtime(), error: { name: e?.name, code: e?.code, message: String(e?.message ?? e) } })}\n`)
  process.exitCode = 1
}
