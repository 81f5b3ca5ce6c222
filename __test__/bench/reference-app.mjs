// The README's reference app, as a fresh process: supplier → google-auth-library AwsClient → BigQuery
// query, against the loopback emulator. bench.mjs times spawn → the first row on stdout.
//
//   BENCH_SIDE=ours|js BENCH_EMULATOR_URL=… node __test__/bench/reference-app.mjs
//
// Prints `ROW <json>` for the first row, then exits. Everything but the emulator URL, the audience and
// the service account (passed by the environment, see sides.mjs) is what an application would write.

import { BigQuery } from '@google-cloud/bigquery'
import { AwsClient } from 'google-auth-library'
import { awsClientOptions, benchConfig, importSide } from './sides.mjs'

const QUERY = 'SELECT greeting, principal, n FROM emulator'

const config = benchConfig()
const { Supplier } = await importSide(process.env.BENCH_SIDE ?? 'ours')
const authClient = new AwsClient(awsClientOptions(new Supplier(), config))
const bigquery = new BigQuery({ projectId: 'my-project', location: 'US', authClient, apiEndpoint: config.url })
const [rows] = await bigquery.query({ query: QUERY, location: 'US' })
process.stdout.write(`ROW ${JSON.stringify(rows[0])}\n`)
process.exit(0)
