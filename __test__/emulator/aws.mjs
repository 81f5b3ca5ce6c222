// AWS side of the loopback emulator: the places an SDK running in an AWS container gets credentials
// and its region from. Every credential handed out here is recorded in `em.issued`, which is the
// only key store the Google STS emulator (google.mjs) trusts.
//
// Routes and wire formats:
//   [container]    GET /v2/credentials/<id>     ECS / Fargate / App Runner task role
//                                               (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, host 169.254.170.2)
//                  GET /v1/credentials          EKS Pod Identity agent
//                                               (AWS_CONTAINER_CREDENTIALS_FULL_URI, host 169.254.170.23)
//                  200 application/json {"RoleArn","AccessKeyId","SecretAccessKey","Token",
//                                        "Expiration":"YYYY-MM-DDTHH:MM:SSZ","AccountId"}
//                  With em.config.containerAuthToken set, `Authorization` must equal it exactly,
//                  else 400 {"code":"InvalidToken","message":...} (Pod Identity agent behaviour).
//   [imds]         IMDSv2 only (169.254.169.254):
//                  PUT /latest/api/token, header x-aws-ec2-metadata-token-ttl-seconds: 1..21600 -> token
//                  GET /latest/meta-data/... needs header x-aws-ec2-metadata-token, else 401
//                    iam/security-credentials/        -> role name (text)
//                    iam/security-credentials/<role>  -> {"Code":"Success","LastUpdated","Type":"AWS-HMAC",
//                                                        "AccessKeyId","SecretAccessKey","Token","Expiration"}
//                    iam/info                         -> {"Code":"Success","LastUpdated","InstanceProfileArn",
//                                                        "InstanceProfileId"}
//                    placement/region                 -> "us-east-1"
//                    placement/availability-zone      -> "us-east-1a"
//   [taskMetadata] ECS task metadata v4 (ECS_CONTAINER_METADATA_URI_V4 = <em.url>/ecs-metadata/v4/<id>):
//                  GET /ecs-metadata/v4/<id>/task -> task JSON (Cluster, TaskARN, AvailabilityZone, LaunchType…)
//                  GET /ecs-metadata/v4/<id>      -> container JSON
//   [awsSts]       POST /aws-sts[/] form body Action=AssumeRole (SigV4-signed, verified by sigv4-oracle.mjs's
//                  verifySignedRequest: profile role_arn + source_profile) -> 200 AssumeRoleResponse, or
//                  Action=AssumeRoleWithWebIdentity&RoleArn&RoleSessionName
//                  &WebIdentityToken&Version=2011-06-15 (EKS IRSA through aws-sdk-sts with
//                  AWS_ENDPOINT_URL_STS=<em.url>/aws-sts) -> 200 text/xml AssumeRoleWithWebIdentityResponse,
//                  errors -> 400 text/xml <ErrorResponse><Error><Type>Sender</Type><Code>…</Code>…

import { verifySignedRequest } from './sigv4-oracle.mjs'
import { json, randomBase32, randomBase64, randomToken, randomUUID, rfc3339, text, xml, xmlEscape } from './wire.mjs'

const ECS_TASK_ID = '0123456789abcdef'
const EC2_INSTANCE_ID = 'i-0123456789abcdef0'
const IMDS_MAX_TTL_SECONDS = 21600

/**
 * Issue new AWS credentials (or the fixed `em.config.credentials`) and record them in `em.issued`.
 * `arn` is the caller identity GetCallerIdentity would report for them.
 */
export function issueAwsCredentials(em, { source, arn, ttlMs = em.config.credentialsTtlMs }) {
  const fixed = em.config.credentials
  const expiresAt = em.now() + ttlMs
  const creds = {
    accessKeyId: fixed?.accessKeyId ?? `ASIA${randomBase32(16)}`,
    secretAccessKey: fixed?.secretAccessKey ?? randomBase64(30),
    token: fixed ? (fixed.token ?? null) : `IQoJb3JpZ2luX2VjE${randomBase64(96)}`,
    expiration: rfc3339(expiresAt),
    expiresAt,
    arn,
    source,
  }
  em.issued.set(creds.accessKeyId, creds)
  return creds
}

function roleName(em) {
  return em.config.roleArn.split('/').pop()
}

function assumedRoleArn(em, role, session) {
  return `arn:aws:sts::${em.config.accountId}:assumed-role/${role}/${session}`
}

// ---------------------------------------------------------------------------------------------
// [container] ECS / EKS Pod Identity credential endpoint

function containerCredentials(ctx) {
  const { em } = ctx
  const required = em.config.containerAuthToken
  if (required != null && ctx.headers.authorization !== required) {
    return json(400, {
      code: 'InvalidToken',
      message: ctx.headers.authorization ? 'Service account token cannot be validated' : 'Authorization header is missing',
    })
  }
  const creds = issueAwsCredentials(em, { source: 'container', arn: assumedRoleArn(em, roleName(em), ECS_TASK_ID) })
  return json(200, {
    RoleArn: em.config.roleArn,
    AccessKeyId: creds.accessKeyId,
    SecretAccessKey: creds.secretAccessKey,
    Token: creds.token,
    Expiration: creds.expiration,
    AccountId: em.config.accountId,
  })
}

// ---------------------------------------------------------------------------------------------
// [imds] EC2 instance metadata service, IMDSv2 only

function imdsToken(ctx) {
  const ttl = Number(ctx.headers['x-aws-ec2-metadata-token-ttl-seconds'])
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > IMDS_MAX_TTL_SECONDS) {
    return text(400, 'Bad Request: x-aws-ec2-metadata-token-ttl-seconds must be an integer in 1..21600')
  }
  const token = `AQAEA${randomToken(40)}`
  ctx.em.imdsTokens.set(token, ctx.em.now() + ttl * 1000)
  return text(200, token, { 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) })
}

function hasValidImdsToken(ctx) {
  const expiresAt = ctx.em.imdsTokens.get(ctx.headers['x-aws-ec2-metadata-token'])
  return expiresAt !== undefined && ctx.em.now() < expiresAt
}

/** Paths below /latest/meta-data/, each returning a reply for a request with a valid session token. */
const IMDS_PATHS = {
  'iam/security-credentials/': (em) => text(200, roleName(em)),
  'iam/info': (em) =>
    json(200, {
      Code: 'Success',
      LastUpdated: rfc3339(em.now()),
      InstanceProfileArn: `arn:aws:iam::${em.config.accountId}:instance-profile/${roleName(em)}`,
      InstanceProfileId: `AIPA${randomBase32(17)}`,
    }),
  'placement/region': (em) => text(200, em.config.region),
  'placement/availability-zone': (em) => text(200, `${em.config.region}a`),
}

function imdsMetadata(ctx) {
  if (!hasValidImdsToken(ctx)) return text(401, 'Unauthorized')
  const { em } = ctx
  const subPath = ctx.params[0]
  if (IMDS_PATHS[subPath]) return IMDS_PATHS[subPath](em)
  if (subPath !== `iam/security-credentials/${roleName(em)}`) return text(404, 'Not Found')
  const creds = issueAwsCredentials(em, { source: 'imds', arn: assumedRoleArn(em, roleName(em), EC2_INSTANCE_ID) })
  return json(200, {
    Code: 'Success',
    LastUpdated: rfc3339(em.now()),
    Type: 'AWS-HMAC',
    AccessKeyId: creds.accessKeyId,
    SecretAccessKey: creds.secretAccessKey,
    Token: creds.token,
    Expiration: creds.expiration,
  })
}

// ---------------------------------------------------------------------------------------------
// [taskMetadata] ECS task metadata endpoint v4

function ecsArns(em) {
  const prefix = `arn:aws:ecs:${em.config.region}:${em.config.accountId}`
  return {
    cluster: `${prefix}:cluster/demo`,
    task: `${prefix}:task/demo/${ECS_TASK_ID}`,
    container: `${prefix}:container/demo/${ECS_TASK_ID}/11111111-2222-3333-4444-555555555555`,
  }
}

function containerDocument(em) {
  const arns = ecsArns(em)
  return {
    DockerId: `${ECS_TASK_ID}-1234567890`,
    Name: 'app',
    DockerName: 'app',
    Image: 'public.ecr.aws/docker/library/node:20',
    Labels: {
      'com.amazonaws.ecs.cluster': arns.cluster,
      'com.amazonaws.ecs.container-name': 'app',
      'com.amazonaws.ecs.task-arn': arns.task,
      'com.amazonaws.ecs.task-definition-family': 'demo',
      'com.amazonaws.ecs.task-definition-version': '1',
    },
    DesiredStatus: 'RUNNING',
    KnownStatus: 'RUNNING',
    Limits: { CPU: 2 },
    Type: 'NORMAL',
    ContainerARN: arns.container,
    LogDriver: 'awslogs',
    LogOptions: { 'awslogs-group': '/ecs/demo', 'awslogs-region': em.config.region, 'awslogs-stream': `ecs/app/${ECS_TASK_ID}` },
    Networks: [{ NetworkMode: 'awsvpc', IPv4Addresses: ['10.0.0.10'] }],
  }
}

function taskDocument(em) {
  const arns = ecsArns(em)
  return {
    Cluster: arns.cluster,
    TaskARN: arns.task,
    Family: 'demo',
    Revision: '1',
    DesiredStatus: 'RUNNING',
    KnownStatus: 'RUNNING',
    Limits: { CPU: 0.25, Memory: 512 },
    AvailabilityZone: `${em.config.region}a`,
    LaunchType: em.config.launchType,
    Containers: [containerDocument(em)],
  }
}

// ---------------------------------------------------------------------------------------------
// [awsSts] AWS STS AssumeRoleWithWebIdentity (EKS IRSA), AWS query protocol

function awsStsError(status, code, message) {
  return xml(
    status,
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">' +
      `<Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>` +
      `<RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  )
}

/** The required fields are present and RoleArn is a role ARN; returns an error reply or null. */
function checkRoleForm(form, required) {
  for (const name of required) {
    if (!form.get(name)) {
      return awsStsError(400, 'ValidationError', `1 validation error detected: Value null at '${name}' failed to satisfy constraint: Member must not be null`)
    }
  }
  if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/.+/.test(form.get('RoleArn'))) {
    return awsStsError(400, 'ValidationError', `${form.get('RoleArn')} is invalid`)
  }
  return null
}

/** Validate an AssumeRoleWithWebIdentity form; returns an error reply or null. */
function checkWebIdentityForm(em, form) {
  if (form.get('Action') !== 'AssumeRoleWithWebIdentity') {
    return awsStsError(400, 'InvalidAction', `Could not find operation ${form.get('Action')} for version 2011-06-15`)
  }
  const invalid = checkRoleForm(form, ['RoleArn', 'RoleSessionName', 'WebIdentityToken'])
  if (invalid) return invalid
  const expected = em.config.webIdentityToken
  if (expected != null && form.get('WebIdentityToken') !== expected) {
    return awsStsError(400, 'InvalidIdentityToken', "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements")
  }
  return null
}

/** The <AssumedRoleUser> and <Credentials> elements both AssumeRole results carry. */
function assumedRoleXml(arn, session, creds) {
  return (
    `<AssumedRoleUser><Arn>${xmlEscape(arn)}</Arn><AssumedRoleId>AROA${randomBase32(17)}:${xmlEscape(session)}</AssumedRoleId></AssumedRoleUser>` +
    '<Credentials>' +
    `<SessionToken>${creds.token}</SessionToken><SecretAccessKey>${creds.secretAccessKey}</SecretAccessKey>` +
    `<Expiration>${creds.expiration}</Expiration><AccessKeyId>${creds.accessKeyId}</AccessKeyId>` +
    '</Credentials>'
  )
}

/** POST /aws-sts: AssumeRole (SigV4-signed, checked by the oracle) or AssumeRoleWithWebIdentity. */
function awsSts(ctx) {
  const form = new URLSearchParams(ctx.body)
  return form.get('Action') === 'AssumeRole' ? assumeRole(ctx, form) : assumeRoleWithWebIdentity(ctx, form)
}

/**
 * AssumeRole, as aws-config's profile provider sends it for `role_arn` + `source_profile`: the
 * signature is verified with @smithy/signature-v4 (sigv4-oracle.mjs) against the key that signed it,
 * which must have been issued or registered here. The verdict is kept on the request log entry.
 */
async function assumeRole(ctx, form) {
  const { em } = ctx
  const verdict = await verifySignedRequest(
    { method: ctx.req.method, path: ctx.req.url, headers: ctx.headers, body: ctx.body },
    { lookupKey: (id) => em.issued.get(id), nowMs: em.now() },
  )
  ctx.entry.verdict = verdict
  if (!verdict.ok) return awsStsError(403, verdict.awsCode ?? 'SignatureDoesNotMatch', verdict.message)
  const invalid = checkRoleForm(form, ['RoleArn', 'RoleSessionName'])
  if (invalid) return invalid
  const role = form.get('RoleArn').split('/').pop()
  const session = form.get('RoleSessionName')
  const arn = assumedRoleArn(em, role, session)
  const creds = issueAwsCredentials(em, { source: 'assume-role', arn })
  return xml(
    200,
    '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">' +
      '<AssumeRoleResult>' +
      assumedRoleXml(arn, session, creds) +
      '</AssumeRoleResult>' +
      `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>` +
      '</AssumeRoleResponse>',
    { 'x-amzn-requestid': randomUUID() },
  )
}

function assumeRoleWithWebIdentity(ctx, form) {
  const { em } = ctx
  const error = checkWebIdentityForm(em, form)
  if (error) return error
  const role = form.get('RoleArn').split('/').pop()
  const session = form.get('RoleSessionName')
  const arn = assumedRoleArn(em, role, session)
  const durationSeconds = Number(form.get('DurationSeconds'))
  const ttlMs = durationSeconds > 0 ? durationSeconds * 1000 : em.config.credentialsTtlMs
  const creds = issueAwsCredentials(em, { source: 'web-identity', arn, ttlMs })
  return xml(
    200,
    '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">' +
      '<AssumeRoleWithWebIdentityResult>' +
      '<SubjectFromWebIdentityToken>system:serviceaccount:default:demo</SubjectFromWebIdentityToken>' +
      '<Audience>sts.amazonaws.com</Audience>' +
      assumedRoleXml(arn, session, creds) +
      `<Provider>arn:aws:iam::${em.config.accountId}:oidc-provider/oidc.eks.${em.config.region}.amazonaws.com/id/EXAMPLE</Provider>` +
      '</AssumeRoleWithWebIdentityResult>' +
      `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>` +
      '</AssumeRoleWithWebIdentityResponse>',
    { 'x-amzn-requestid': randomUUID() },
  )
}

/** Route table entries: { route, method, pattern, handle(ctx) }. */
export const awsRoutes = [
  { route: 'container', method: 'GET', pattern: /^\/v2\/credentials\/.+$/, handle: containerCredentials },
  { route: 'container', method: 'GET', pattern: /^\/v1\/credentials$/, handle: containerCredentials },
  { route: 'imds', method: 'PUT', pattern: /^\/latest\/api\/token$/, handle: imdsToken },
  { route: 'imds', method: 'GET', pattern: /^\/latest\/meta-data\/(.*)$/, handle: imdsMetadata },
  { route: 'taskMetadata', method: 'GET', pattern: /^\/ecs-metadata\/v4\/[^/]+\/task$/, handle: (ctx) => json(200, taskDocument(ctx.em)) },
  { route: 'taskMetadata', method: 'GET', pattern: /^\/ecs-metadata\/v4\/[^/]+$/, handle: (ctx) => json(200, containerDocument(ctx.em)) },
  { route: 'awsSts', method: 'POST', pattern: /^\/aws-sts\/?$/, handle: awsSts },
]
