'use strict'
// An AWS Lambda function (Node.js 18+ runtime) that reads BigQuery through Workload Identity
// Federation, with no service-account key.
//
// The clients are built once, outside the handler: warm invocations reuse the fetcher's token
// cache (one STS exchange per token lifetime, not one per invocation), and a thawed process picks
// up where it left off. AWS credentials come from the function's role: Lambda sets
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (or, in some modes,
// AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN); the package reads
// whichever is there.
//
// Configuration (function environment):
//   GOOGLE_APPLICATION_CREDENTIALS  the file from `gcloud iam workload-identity-pools create-cred-config --aws`, packaged with the function
//   GCP_PROJECT_ID                  BigQuery project
//   BIGQUERY_API_ENDPOINT           optional; only for tests against a local emulator
//
// An event `{ "audience": "https://my-service-….run.app" }` also returns an ID token's expiry for
// that Cloud Run service (the token itself is never logged or returned).

const { BigQuery } = require('@google-cloud/bigquery')
const { GoogleTokenFetcher } = require('aws-wif-supplier')

const fetcher = GoogleTokenFetcher.fromEnv()
const bigquery = new BigQuery({
  projectId: process.env.GCP_PROJECT_ID,
  location: 'US',
  // CommonJS: google-auth-library is found from this file. In an ES module handler, pass it:
  // fetcher.authClient({ googleAuthLibrary: require('google-auth-library') }) through createRequire.
  authClient: fetcher.authClient(),
  ...(process.env.BIGQUERY_API_ENDPOINT ? { apiEndpoint: process.env.BIGQUERY_API_ENDPOINT } : {}),
})

exports.handler = async (event = {}) => {
  if (event.audience) {
    const { expiresAt } = await fetcher.getIdToken(event.audience)
    return { audience: event.audience, expiresAt }
  }
  const [rows] = await bigquery.query({ query: 'SELECT SESSION_USER() AS principal', location: 'US' })
  return { principal: rows[0].principal }
}
