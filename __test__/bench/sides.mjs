// The two sides of every comparison, loaded the same way by every probe and by the reference app:
//
//   ours  require('aws-wif-supplier')  → ContainerAwsCredentialsSupplier (and GoogleTokenFetcher, once it exists)
//   js    ./reference-supplier.mjs      → ReferenceAwsSupplier (google-auth-library's sample:
//                                          fromNodeProviderChain built once, region from STSClient)
//
// The reference app is also run with two more, for informational rows (APP_SIDES):
//
//   js-lite  ./reference-supplier-lite.mjs → the sample without @aws-sdk/client-sts (region from AWS_REGION)
//   floor    ./floor-supplier.mjs          → a zero-cost supplier (credentials fetched by the parent)
//   native   require('aws-wif-supplier')  → GoogleTokenFetcher.authClient(): no AwsClient, no JS STS/IAM
//   token-floor  google-auth-library's OAuth2Client holding a Google token issued beforehand
//                (BENCH_STATIC_GOOGLE_TOKEN): no exchange at all, the floor of every authClient path
//
// Both modules are loaded with a dynamic import(), so the loading mechanism costs both sides the same.
// Every child process gets its configuration through the environment (see bench.mjs `probeEnv`):
//
//   BENCH_EMULATOR_URL    the loopback emulator (Google STS, IAM, BigQuery; AWS container route)
//   BENCH_AUDIENCE        the workload identity provider audience the emulator accepts
//   BENCH_SERVICE_ACCOUNT the service account the emulator impersonates
//   BENCH_OURS_DIR        optional: a staged copy of this package to load as `ours` (WIF_BENCH_ADDON)
//   AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_REGION   the AWS side, for both suppliers

import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

export const SIDES = Object.freeze(['ours', 'js'])
export const APP_SIDES = Object.freeze([...SIDES, 'js-lite', 'floor', 'native', 'token-floor'])

const ENTRY = {
  // What an ES module importer of the package gets (package.json exports: import → index.mjs).
  ours: process.env.BENCH_OURS_DIR ? pathToFileURL(join(process.env.BENCH_OURS_DIR, 'index.mjs')) : new URL('../../index.mjs', import.meta.url),
  js: new URL('./reference-supplier.mjs', import.meta.url),
  'js-lite': new URL('./reference-supplier-lite.mjs', import.meta.url),
  floor: new URL('./floor-supplier.mjs', import.meta.url),
}
ENTRY.native = ENTRY.ours
ENTRY['token-floor'] = ENTRY.floor

export const AWS4_REQUEST = 'urn:ietf:params:aws:token-type:aws4_request'

/** Import one side's module. Returns {Supplier, GoogleTokenFetcher} (the fetcher only for ours, if built). */
export async function importSide(side) {
  const url = ENTRY[side]
  if (!url) throw new Error(`unknown side "${side}"; expected one of ${APP_SIDES.join(', ')}`)
  const ns = await import(url.href)
  const mod = ns.default ?? ns
  if (side === 'ours' || side === 'native') return { Supplier: mod.ContainerAwsCredentialsSupplier, GoogleTokenFetcher: mod.GoogleTokenFetcher }
  return { Supplier: mod.ReferenceAwsSupplier ?? mod.FloorSupplier, GoogleTokenFetcher: undefined }
}

/** The benchmark's endpoints, from the environment a probe was started with. */
export function benchConfig(env = process.env) {
  const url = env.BENCH_EMULATOR_URL
  if (!url) throw new Error('BENCH_EMULATOR_URL is not set (run through `npm run bench`)')
  const serviceAccount = env.BENCH_SERVICE_ACCOUNT
  return {
    url,
    audience: env.BENCH_AUDIENCE,
    tokenUrl: `${url}/v1/token`,
    serviceAccountImpersonationUrl: `${url}/v1/projects/-/serviceAccounts/${serviceAccount}:generateAccessToken`,
  }
}

/** google-auth-library AwsClient options for `supplier`, against the emulator (with impersonation). */
export function awsClientOptions(supplier, config = benchConfig()) {
  return {
    audience: config.audience,
    subject_token_type: AWS4_REQUEST,
    token_url: config.tokenUrl,
    service_account_impersonation_url: config.serviceAccountImpersonationUrl,
    aws_security_credentials_supplier: supplier,
  }
}

/** GoogleTokenFetcher options for the same flow. */
export function fetcherOptions(config = benchConfig()) {
  return { audience: config.audience, tokenUrl: config.tokenUrl, serviceAccountImpersonationUrl: config.serviceAccountImpersonationUrl }
}

export const NO_FETCHER = 'skipped: GoogleTokenFetcher is not exported by this build yet'

/**
 * A GoogleTokenFetcher for the benchmark flow, or null while it does not exist: the class is being
 * written by a colleague, so rows that need it are skipped when `typeof GoogleTokenFetcher !==
 * 'function'`, or when the JS wrapper exists but the loaded .node predates the native class.
 */
export function makeFetcher(GoogleTokenFetcher, config = benchConfig()) {
  if (typeof GoogleTokenFetcher !== 'function') return null
  try {
    return new GoogleTokenFetcher(fetcherOptions(config))
  } catch (err) {
    if (err instanceof TypeError && /not a constructor/.test(err.message)) return null
    throw err
  }
}
