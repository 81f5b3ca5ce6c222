// The floor of the reference-app measurement: a supplier that costs nothing. It answers from
// credentials the emulator issued to the parent beforehand (BENCH_STATIC_CREDENTIALS, JSON of
// {accessKeyId, secretAccessKey, token}) and imports nothing. The app's time with it is what every
// supplier pays anyway (node, google-auth-library, BigQuery, STS, IAM); floor/JS is the best ratio
// any supplier could reach against the reference.

export class FloorSupplier {
  async getAwsRegion(_context) {
    return process.env.AWS_REGION
  }

  async getAwsSecurityCredentials(_context) {
    return JSON.parse(process.env.BENCH_STATIC_CREDENTIALS)
  }
}
