// A lighter variant of the JavaScript reference, for one informational row of the benchmark: the
// provider chain of google-auth-library's sample (`fromNodeProviderChain()`, built once in the
// constructor), but the region read from AWS_REGION instead of `new STSClient({}).config.region()`,
// so @aws-sdk/client-sts is never loaded. The README of google-auth-library shows this shape (with a
// hard-coded region). reference-supplier.mjs is the sample itself and the one the targets use.

import { fromNodeProviderChain } from '@aws-sdk/credential-providers'

export class ReferenceAwsSupplier {
  constructor() {
    this.awsCredentialsProvider = fromNodeProviderChain()
  }

  async getAwsRegion(_context) {
    const region = process.env.AWS_REGION
    if (!region) throw new Error('AWS_REGION is not set')
    return region
  }

  async getAwsSecurityCredentials(_context) {
    const c = await this.awsCredentialsProvider()
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, token: c.sessionToken }
  }
}
