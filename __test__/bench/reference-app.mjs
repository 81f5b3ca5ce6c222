// The README's reference app, as a fresh process: supplier → google-auth-library AwsClient → BigQuery
// query, against the loopback emulator. bench.mjs times spawn → the first row on stdout.
//
//   BENCH_SIDE=ours|js|js-lite|floor|native BENCH_EMULATOR_URL=… node __test__/bench/reference-app.mjs
//
// BENCH_SIDE=native is the all-native path: `GoogleTokenFetcher.authClient()` instead of AwsClient.
// BENCH_SIDE=token-floor is google-auth-library's OAuth2Client with a Google token the parent had
// issued (BENCH_STATIC_GOOGLE_TOKEN, JSON {access_token, expiry_date}): no exchange at all.
//
// Prints `ROW <json>` for the first row, then exits. Everything but the emulator URL, the audience and
// the service account (passed by the environment, see sides.mjs) is what an application would write.

import { BigQuery } from '@google-cloud/bigquery'
import { AwsClient, OAuth2Client } from 'google-auth-library'
import { awsClientOptions, benchConfig, fetcherOptions, importSide } from './sides.mjs'

const QUERY = 'SELECT greeting, principal, n FROM emulator'

const config = benchConfig()
const side = process.env.BENCH_SIDE ?? 'ours'
const { Supplier, GoogleTokenFetcher } = await importSide(side)
function makeAuthClient() {
  if (side === 'native') return new GoogleTokenFetcher(fetcherOptions(config)).authClient()
  if (side === 'token-floor') {
    const client = new OAuth2Client()
    client.setCredentials(JSON.parse(process.env.BENCH_STATIC_GOOGLE_TOKEN))
    return client
  }
  return new AwsClient(awsClientOptions(new Supplier(), config))
}
const authClient = makeAuthClient()
const bigquery = new BigQuery({ projectId: 'my-project', location: 'US', authClient, apiEndpoint: config.url })
const [rows] = await bigquery.query({ query: QUERY, location: 'US' })
process.stdout.write(`ROW ${JSON.stringify(rows[0])}\n`)
process.exit(0)
