// The JavaScript reference the benchmark compares against: google-auth-library's sample
// `samples/customCredentialSupplierAwsWorkload.js` (googleapis/google-auth-library-nodejs, PR #2131),
// an AwsSecurityCredentialsSupplier built on the AWS SDK for JavaScript v3, reproduced here without
// its logging and its Storage usage:
//
//   * the provider chain is built once, in the constructor (`fromNodeProviderChain()`); the SDK
//     memoizes the credentials inside it (and shares one in-flight load), per isolate;
//   * the region comes from `new STSClient({}).config.region()`, the SDK's region provider chain
//     (AWS_REGION, then the shared config file), resolved on the first call and kept.
//
// Both modules are imported at the top, as the sample `require`s them.

import { fromNodeProviderChain } from '@aws-sdk/credential-providers'
import { STSClient } from '@aws-sdk/client-sts'

export class ReferenceAwsSupplier {
  constructor() {
    this.region = null
    this.awsCredentialsProvider = fromNodeProviderChain()
  }

  async getAwsRegion(_context) {
    if (this.region) return this.region
    const client = new STSClient({})
    this.region = await client.config.region()
    if (!this.region) throw new Error('CustomAwsSupplier: Unable to resolve AWS region.')
    return this.region
  }

  async getAwsSecurityCredentials(_context) {
    const awsCredentials = await this.awsCredentialsProvider()
    return {
      accessKeyId: awsCredentials.accessKeyId,
      secretAccessKey: awsCredentials.secretAccessKey,
      token: awsCredentials.sessionToken,
    }
  }
}
