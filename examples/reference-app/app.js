'use strict'
// The reference app: a Node service in an AWS container (App Runner, ECS/Fargate, EKS) that reads
// BigQuery through Workload Identity Federation, with no service-account key. It is the app of the
// README, unchanged but for the import line of the supplier.
//
// Configuration (environment):
//   GCP_PROJECT_ID                     BigQuery project
//   WIF_AUDIENCE                       //iam.googleapis.com/projects/<N>/locations/global/workloadIdentityPools/<POOL>/providers/<PROVIDER>
//   WIF_SERVICE_ACCOUNT_IMPERSONATION_URL   https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/<SA>:generateAccessToken
//   WIF_TOKEN_URL                      default https://sts.googleapis.com/v1/token
//   BIGQUERY_API_ENDPOINT              optional; only for tests against a local emulator
//   PORT                               HTTP port (App Runner sets it); `node app.js --once` queries once and exits
// AWS credentials and region come from the platform (task role, Pod Identity, IRSA, instance profile).

const http = require('node:http')
const { AwsClient } = require('google-auth-library')
const { BigQuery } = require('@google-cloud/bigquery')
const { ContainerAwsCredentialsSupplier } = require('aws-wif-supplier')

function bigQueryClient(env = process.env) {
  const authClient = new AwsClient({
    audience: env.WIF_AUDIENCE,
    subject_token_type: 'urn:ietf:params:aws:token-type:aws4_request',
    service_account_impersonation_url: env.WIF_SERVICE_ACCOUNT_IMPERSONATION_URL,
    token_url: env.WIF_TOKEN_URL || 'https://sts.googleapis.com/v1/token',
    aws_security_credentials_supplier: new ContainerAwsCredentialsSupplier(),
  })
  const options = { projectId: env.GCP_PROJECT_ID, location: 'US', authClient }
  if (env.BIGQUERY_API_ENDPOINT) options.apiEndpoint = env.BIGQUERY_API_ENDPOINT
  return new BigQuery(options)
}

async function firstRows(bigquery) {
  const [rows] = await bigquery.query({ query: 'SELECT CURRENT_TIMESTAMP() AS now', location: 'US' })
  return rows
}

function serve(bigquery, port) {
  const server = http.createServer(async (req, res) => {
    try {
      const rows = await firstRows(bigquery)
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(rows))
    } catch (e) {
      // The error's code and message never hold a secret; log them for the operator.
      console.error(`query failed: ${e.code ?? ''} ${e.message}`)
      res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: e.code ?? 'QUERY_FAILED' }))
    }
  })
  return server.listen(port, () => console.log(`listening on ${port}`))
}

if (require.main === module) {
  const bigquery = bigQueryClient()
  if (process.argv.includes('--once')) {
    firstRows(bigquery).then(
      (rows) => console.log(JSON.stringify(rows)),
      (e) => {
        console.error(`query failed: ${e.code ?? ''} ${e.message}`)
        process.exitCode = 1
      },
    )
  } else {
    serve(bigquery, Number(process.env.PORT) || 8080)
  }
}

module.exports = { bigQueryClient, firstRows, serve }
