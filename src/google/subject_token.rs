//! The AWS subject token for Google STS, byte for byte as google-auth-library 10.x/11.x
//! `AwsClient.retrieveSubjectToken()` builds it (awsclient.ts, awsrequestsigner.ts; AIP-4117).
//!
//! 1. The request: `POST https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15`
//!    ([`DEFAULT_VERIFICATION_URL`]; a configuration's `regional_cred_verification_url` may replace
//!    it), empty body (payload hash = SHA-256 of `""`).
//! 2. SigV4 with aws-sigv4: region = the AWS region; service = the first label of the host with a
//!    `-fips` suffix removed (`sts-fips.us-east-2.amazonaws.com` → `sts`, as 11.x does). Signed
//!    headers: `host;x-amz-date[;x-amz-security-token]` (the session token is signed, aws-sigv4's
//!    `SessionTokenMode::Include`).
//! 3. [`TARGET_RESOURCE_HEADER`] `x-goog-cloud-target-resource: <audience>` is added **after**
//!    signing and so is not signed, as google-auth-library does (Go and google-cloud-rust sign it;
//!    Google STS accepts both).
//! 4. Serialisation: `encodeURIComponent(JSON.stringify({url, method: "POST", headers: [{key, value}, …]}))`
//!    with keys in that order, no `body` key, header names lower-case and sorted (`authorization`,
//!    `host`, `x-amz-date`, `x-amz-security-token`, `x-goog-cloud-target-resource`, the order in
//!    which a WHATWG `Headers` iterates), and `url` exactly as in step 1 (no `/` before `?`).
//!
//! The token carries the session token and a signature valid for about 15 minutes: it is a secret
//! and is returned as a [`Secret`].

use std::time::SystemTime;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use crate::aws::credentials::AwsCredentials;
use crate::error::{Error, ErrorKind, Result};
use crate::redact::Secret;

use super::encoding::encode_uri_component;

/// The subject token type of AWS-sourced credentials (`subject_token_type`).
pub const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";
/// google-auth-library's `#DEFAULT_AWS_REGIONAL_CREDENTIAL_VERIFICATION_URL`.
pub const DEFAULT_VERIFICATION_URL: &str = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";
/// The header naming the workload identity provider, added unsigned after signing.
pub const TARGET_RESOURCE_HEADER: &str = "x-goog-cloud-target-resource";
/// The method of the GetCallerIdentity request.
pub const METHOD: &str = "POST";

/// The GetCallerIdentity URL for a region (the URL inside the subject token).
pub fn sts_url(region: &str) -> String {
  verification_url(DEFAULT_VERIFICATION_URL, region)
}

/// A `regional_cred_verification_url` template with `{region}` substituted.
pub fn verification_url(template: &str, region: &str) -> String {
  template.replace("{region}", region)
}

/// The SigV4 service of a host: its first label without a `-fips` suffix.
pub fn signing_service(host: &str) -> &str {
  let first = host.split('.').next().unwrap_or_default();
  first.strip_suffix("-fips").unwrap_or(first)
}

/// The `host` of a URL as WHATWG `URL.host` gives it (with the port unless it is the default).
pub fn url_host(url: &str) -> Result<String> {
  let bad = |why: &str| Error::new(ErrorKind::ConfigInvalid, format!("the AWS verification URL {} {why}", crate::redact::url(url)));
  let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("is not a valid URL ({e})")))?;
  let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("has no host"))?;
  Ok(match parsed.port() {
    Some(port) => format!("{host}:{port}"),
    None => host.to_string(),
  })
}

/// A signed GetCallerIdentity request. `Debug` shows header names only.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRequest {
  pub url: String,
  /// Lower-case names, sorted; includes `authorization` and, with a session token, `x-amz-security-token`.
  pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for SignedRequest {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
    f.debug_struct("SignedRequest").field("url", &crate::redact::url(&self.url)).field("headers", &names).finish()
  }
}

impl SignedRequest {
  pub fn header(&self, name: &str) -> Option<&str> {
    self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
  }

  /// The `Authorization` value without its signature, e.g.
  /// `AWS4-HMAC-SHA256 Credential=ASIA…/20200811/us-east-2/sts/aws4_request, SignedHeaders=host;x-amz-date`.
  /// Safe to show (the signature alone is not a credential, but there is no need to show it).
  pub fn authorization_summary(&self) -> String {
    let auth = self.header("authorization").unwrap_or_default();
    auth.split(", Signature=").next().unwrap_or_default().to_string()
  }

  /// `encodeURIComponent(JSON.stringify({url, method, headers}))`.
  pub fn serialize(&self) -> Secret {
    let headers: Vec<String> =
      self.headers.iter().map(|(k, v)| format!("{{\"key\":{},\"value\":{}}}", json_string(k), json_string(v))).collect();
    let json = format!("{{\"url\":{},\"method\":\"{METHOD}\",\"headers\":[{}]}}", json_string(&self.url), headers.join(","));
    Secret::new(encode_uri_component(&json))
  }
}

/// A JSON string literal, escaped as `JSON.stringify` escapes it.
fn json_string(s: &str) -> String {
  serde_json::Value::String(s.to_string()).to_string()
}

/// What to sign with SigV4 (general enough for the published test vectors).
pub(crate) struct Signable<'a> {
  pub method: &'a str,
  pub url: &'a str,
  pub headers: &'a [(&'a str, &'a str)],
  pub body: &'a [u8],
  pub region: &'a str,
  pub service: &'a str,
}

/// The headers SigV4 adds (`x-amz-date`, `authorization`, `x-amz-security-token`), lower-case.
pub(crate) fn sigv4_headers(creds: &AwsCredentials, req: &Signable<'_>, now: SystemTime) -> Result<Vec<(String, String)>> {
  let failed = |e: &dyn std::fmt::Display| {
    Error::new(ErrorKind::ConfigInvalid, format!("cannot sign {} {}: {e}", req.method, crate::redact::url(req.url)))
  };
  let identity = aws_credential_types::Credentials::new(
    &creds.access_key_id,
    creds.secret_access_key.expose(),
    creds.session_token.as_ref().map(|t| t.expose().to_string()),
    None,
    "aws-wif-supplier",
  )
  .into();
  let params = v4::SigningParams::builder()
    .identity(&identity)
    .region(req.region)
    .name(req.service)
    .time(now)
    .settings(SigningSettings::default())
    .build()
    .map_err(|e| failed(&e))?
    .into();
  let signable =
    SignableRequest::new(req.method, req.url, req.headers.iter().copied(), SignableBody::Bytes(req.body)).map_err(|e| failed(&e))?;
  let (instructions, _signature) = sign(signable, &params).map_err(|e| failed(&e))?.into_parts();
  Ok(instructions.headers().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect())
}

/// Sign the GetCallerIdentity request at `url` and add the unsigned target-resource header.
pub fn sign_request(creds: &AwsCredentials, url: &str, region: &str, audience: &str, now: SystemTime) -> Result<SignedRequest> {
  let host = url_host(url)?;
  let signable = Signable { method: METHOD, url, headers: &[("host", &host)], body: b"", region, service: signing_service(&host) };
  let mut headers = sigv4_headers(creds, &signable, now)?;
  headers.push(("host".to_string(), host.clone()));
  headers.push((TARGET_RESOURCE_HEADER.to_string(), audience.to_string()));
  headers.sort();
  Ok(SignedRequest { url: url.to_string(), headers })
}

/// The subject token for the default verification URL of `region`.
pub fn build(creds: &AwsCredentials, region: &str, audience: &str, now: SystemTime) -> Result<Secret> {
  build_for_url(creds, &sts_url(region), region, audience, now)
}

/// The subject token for an explicit verification URL (`{region}` already substituted).
pub fn build_for_url(creds: &AwsCredentials, url: &str, region: &str, audience: &str, now: SystemTime) -> Result<Secret> {
  Ok(sign_request(creds, url, region, audience, now)?.serialize())
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::google::test_server::percent_decode;
  use crate::time::parse_rfc3339;

  // google-auth-library's AWS test fixture (test/fixtures/aws-security-credentials-fake.json, Apache-2.0),
  // also used by golang/oauth2's aws_test.go.
  pub const FIXTURE_KEY_ID: &str = "ASIARD4OQDT6A77FR3CL";
  pub const FIXTURE_SECRET: &str = "Y8AfSaucF37G4PpvfguKZ3/l7Id4uocLXxX0+VTx";
  pub const FIXTURE_TOKEN: &str = "IQoJb3JpZ2luX2VjEIz//////////wEaCXVzLWVhc3QtMiJGMEQCIH7MHX/Oy/OB8OlLQa9GrqU1B914+iMikqWQW7vPCKlgAiA/Lsv8Jcafn14owfxXn95FURZNKaaphj0ykpmS+Ki+CSq0AwhlEAAaDDA3NzA3MTM5MTk5NiIMx9sAeP1ovlMTMKLjKpEDwuJQg41/QUKx0laTZYjPlQvjwSqS3OB9P1KAXPWSLkliVMMqaHqelvMF/WO/glv3KwuTfQsavRNs3v5pcSEm4SPO3l7mCs7KrQUHwGP0neZhIKxEXy+Ls//1C/Bqt53NL+LSbaGv6RPHaX82laz2qElphg95aVLdYgIFY6JWV5fzyjgnhz0DQmy62/Vi8pNcM2/VnxeCQ8CC8dRDSt52ry2v+nc77vstuI9xV5k8mPtnaPoJDRANh0bjwY5Sdwkbp+mGRUJBAQRlNgHUJusefXQgVKBCiyJY4w3Csd8Bgj9IyDV+Azuy1jQqfFZWgP68LSz5bURyIjlWDQunO82stZ0BgplKKAa/KJHBPCp8Qi6i99uy7qh76FQAqgVTsnDuU6fGpHDcsDSGoCls2HgZjZFPeOj8mmRhFk1Xqvkbjuz8V1cJk54d3gIJvQt8gD2D6yJQZecnuGWd5K2e2HohvCc8Fc9kBl1300nUJPV+k4tr/A5R/0QfEKOZL1/k5lf1g9CREnrM8LVkGxCgdYMxLQow1uTL+QU67AHRRSp5PhhGX4Rek+01vdYSnJCMaPhSEgcLqDlQkhk6MPsyT91QMXcWmyO+cAZwUPwnRamFepuP4K8k2KVXs/LIJHLELwAZ0ekyaS7CptgOqS7uaSTFG3U+vzFZLEnGvWQ7y9IPNQZ+Dffgh4p3vF4J68y9049sI6Sr5d5wbKkcbm8hdCDHZcv4lnqohquPirLiFQ3q7B17V9krMPu3mz1cg4Ekgcrn/E09NTsxAqD8NcZ7C7ECom9r+X3zkDOxaajW6hu3Az8hGlyylDaMiFfRbBJpTIlxp7jfa7CxikNgNtEKLH9iCzvuSg2vhA==";
  pub const FIXTURE_AUDIENCE: &str =
    "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/POOL_ID/providers/PROVIDER_ID";
  /// `referenceDate` of test.awsclient.ts.
  pub const FIXTURE_TIME: &str = "2020-08-11T06:55:22.345Z";

  pub fn creds(key: &str, secret: &str, token: Option<&str>) -> AwsCredentials {
    AwsCredentials {
      access_key_id: key.into(),
      secret_access_key: Secret::new(secret),
      session_token: token.map(Secret::new),
      expiration: None,
      account_id: None,
      source: "test",
    }
  }

  pub fn fixture(with_token: bool) -> AwsCredentials {
    creds(FIXTURE_KEY_ID, FIXTURE_SECRET, with_token.then_some(FIXTURE_TOKEN))
  }

  pub fn at(s: &str) -> SystemTime {
    parse_rfc3339(s).unwrap()
  }

  // Generated by google-auth-library 10.9.1 `AwsClient.retrieveSubjectToken()` with an AWS
  // credentials supplier returning the fixture above, region us-east-2, the clock frozen at
  // FIXTURE_TIME. sha256 3720ce6f…5922 (with) and a211696b…64eb (without), as recorded in the
  // research report (google-auth-aws.md §2.3), which regenerated them with 10.9.1 and 11.3.4.
  const NODE_WITH_TOKEN: &str = include_str!("testdata/node_subject_token_with_session_token.txt");
  const NODE_WITHOUT_TOKEN: &str = include_str!("testdata/node_subject_token_without_session_token.txt");

  #[test]
  fn snapshot_matches_google_auth_library_byte_for_byte() {
    let now = at(FIXTURE_TIME);
    let with = build(&fixture(true), "us-east-2", FIXTURE_AUDIENCE, now).unwrap();
    assert_eq!(with.expose(), NODE_WITH_TOKEN);
    let without = build(&fixture(false), "us-east-2", FIXTURE_AUDIENCE, now).unwrap();
    assert_eq!(without.expose(), NODE_WITHOUT_TOKEN);
  }

  #[test]
  fn published_sts_signatures_and_header_order() {
    // test.awsclient.ts L101 and L147.
    let now = at(FIXTURE_TIME);
    let req = sign_request(&fixture(true), &sts_url("us-east-2"), "us-east-2", FIXTURE_AUDIENCE, now).unwrap();
    assert_eq!(req.header("authorization").unwrap(), "AWS4-HMAC-SHA256 Credential=ASIARD4OQDT6A77FR3CL/20200811/us-east-2/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=73452984e4a880ffdc5c392355733ec3f5ba310d5e0609a89244440cadfe7a7a");
    let names: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["authorization", "host", "x-amz-date", "x-amz-security-token", "x-goog-cloud-target-resource"]);
    assert_eq!(req.header("host"), Some("sts.us-east-2.amazonaws.com"));
    assert_eq!(req.header("x-amz-date"), Some("20200811T065522Z"));
    assert_eq!(req.header("x-amz-security-token"), Some(FIXTURE_TOKEN));
    assert_eq!(req.header(TARGET_RESOURCE_HEADER), Some(FIXTURE_AUDIENCE));
    let json = percent_decode(req.serialize().expose());
    assert!(json.starts_with(r#"{"url":"https://sts.us-east-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15","method":"POST","headers":[{"key":"authorization","value":"#), "{json}");
    assert!(!json.contains("\"body\""));

    let req = sign_request(&fixture(false), &sts_url("us-east-2"), "us-east-2", FIXTURE_AUDIENCE, now).unwrap();
    assert!(req
      .header("authorization")
      .unwrap()
      .ends_with("SignedHeaders=host;x-amz-date, Signature=d095ba304919cd0d5570ba8a3787884ee78b860f268ed040ba23831d55536d56"));
    let names: Vec<&str> = req.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["authorization", "host", "x-amz-date", "x-goog-cloud-target-resource"]);
    // google-auth-library-python tests/test_aws.py, no session token.
    let python = creds("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None);
    let req = sign_request(&python, &sts_url("us-east-2"), "us-east-2", FIXTURE_AUDIENCE, now).unwrap();
    assert!(req.header("authorization").unwrap().ends_with("Signature=9e722e5b7bfa163447e2a14df118b45ebd283c5aea72019bdf921d6e7dc01a9a"));
  }

  fn signature_of(c: &AwsCredentials, req: &Signable<'_>, time: &str) -> String {
    let headers = sigv4_headers(c, req, at(time)).unwrap();
    let auth = &headers.iter().find(|(k, _)| k == "authorization").unwrap().1;
    auth.split_once(", SignedHeaders=").unwrap().1.to_string()
  }

  #[test]
  fn published_sigv4_vectors_reproduce_with_our_settings() {
    let example = |token: Option<&str>| creds("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token);
    let host = [("host", "example.amazonaws.com")];
    let vanilla = |method| Signable {
      method,
      url: "https://example.amazonaws.com/",
      headers: &host,
      body: b"",
      region: "us-east-1",
      service: "service",
    };
    let t2015 = "2015-08-30T12:36:00Z";
    // Legacy aws-sig-v4-test-suite get-vanilla and post-vanilla.
    assert_eq!(
      signature_of(&example(None), &vanilla("GET"), t2015),
      "host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    assert_eq!(
      signature_of(&example(None), &vanilla("POST"), t2015),
      "host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
    );
    // aws-c-auth signing suite get-vanilla-with-session-token.
    let crt_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    assert_eq!(
      signature_of(&example(Some(crt_token)), &vanilla("GET"), t2015),
      "host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
    );
    // Legacy suite post-sts-token/post-sts-header-before (token signed).
    let sts_token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
    assert_eq!(
      signature_of(&example(Some(sts_token)), &vanilla("POST"), t2015),
      "host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
    );
    // test.awsrequestsigner.ts: EC2 DescribeRegions and DynamoDB CreateTable with the fixture.
    let ec2_host = [("host", "ec2.us-east-2.amazonaws.com")];
    let ec2 = Signable {
      method: "GET",
      url: "https://ec2.us-east-2.amazonaws.com?Action=DescribeRegions&Version=2013-10-15",
      headers: &ec2_host,
      body: b"",
      region: "us-east-2",
      service: "ec2",
    };
    assert!(signature_of(&fixture(true), &ec2, FIXTURE_TIME)
      .ends_with("Signature=631ea80cddfaa545fdadb120dc92c9f18166e38a5c47b50fab9fce476e022855"));
    let body = br#"{"KeySchema":[{"KeyType":"HASH","AttributeName":"Id"}],"TableName":"TestTable","AttributeDefinitions":[{"AttributeName":"Id","AttributeType":"S"}],"ProvisionedThroughput":{"WriteCapacityUnits":5,"ReadCapacityUnits":5}}"#;
    let ddb_headers = [
      ("host", "dynamodb.us-east-2.amazonaws.com"),
      ("content-type", "application/x-amz-json-1.0"),
      ("x-amz-target", "DynamoDB_20120810.CreateTable"),
    ];
    let ddb = Signable {
      method: "POST",
      url: "https://dynamodb.us-east-2.amazonaws.com/",
      headers: &ddb_headers,
      body,
      region: "us-east-2",
      service: "dynamodb",
    };
    assert_eq!(signature_of(&fixture(true), &ddb, FIXTURE_TIME),
      "content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=fdaa5b9cc9c86b80fe61eaf504141c0b3523780349120f2bd8145448456e0385");
    // Go/Rust style with the target header signed: yoshidan gcloud-auth and abdolence gcloud-sdk.
    let audience = "//iam.googleapis.com/projects/myprojectnumber/locations/global/workloadIdentityPools/aws-test/providers/aws-test";
    let go_headers = [("host", "sts.ap-northeast-1b.amazonaws.com"), (TARGET_RESOURCE_HEADER, audience)];
    let go = Signable {
      method: "POST",
      url: &sts_url("ap-northeast-1b"),
      headers: &go_headers,
      body: b"",
      region: "ap-northeast-1b",
      service: "sts",
    };
    assert_eq!(signature_of(&creds("AccessKeyId", "SecretAccessKey", Some("SecurityToken")), &go, "2022-12-31T00:00:00Z"),
      "host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature=168a40df8b7c11fb0588a13cada1443e31e4736de702232f9a2177b26edda21c");
  }

  #[test]
  fn fips_host_signs_for_sts() {
    assert_eq!(signing_service("sts-fips.us-east-2.amazonaws.com"), "sts");
    assert_eq!(signing_service("sts.us-east-2.amazonaws.com"), "sts");
    assert_eq!(signing_service("ec2.us-east-2.amazonaws.com"), "ec2");
    let url = verification_url("https://sts-fips.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15", "us-east-2");
    let req = sign_request(&fixture(true), &url, "us-east-2", FIXTURE_AUDIENCE, at(FIXTURE_TIME)).unwrap();
    assert_eq!(req.header("host"), Some("sts-fips.us-east-2.amazonaws.com"));
    assert!(
      req.authorization_summary().ends_with("/20200811/us-east-2/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token"),
      "{}",
      req.authorization_summary()
    );
  }

  #[test]
  fn url_helpers() {
    assert_eq!(sts_url("eu-west-1"), "https://sts.eu-west-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15");
    assert_eq!(url_host("https://sts.eu-west-1.amazonaws.com?Action=X").unwrap(), "sts.eu-west-1.amazonaws.com");
    assert_eq!(url_host("https://sts.eu-west-1.amazonaws.com:443/").unwrap(), "sts.eu-west-1.amazonaws.com");
    assert_eq!(url_host("https://127.0.0.1:8443/").unwrap(), "127.0.0.1:8443");
    assert_eq!(url_host("not a url").unwrap_err().code(), "CONFIG_INVALID");
  }

  #[test]
  fn json_escaping_is_json_stringify() {
    // JSON.stringify("a\"b\\c\u0001\n/é") === "\"a\\\"b\\\\c\\u0001\\n/é\""
    assert_eq!(json_string("a\"b\\c\u{1}\n/é"), r#""a\"b\\c\u0001\n/é""#);
  }

  #[test]
  fn secrets_stay_out_of_debug_and_errors() {
    let marker = creds("ASIAMARKERMARKER", "MARKER-SECRET-KEY", Some("MARKER-SESSION-TOKEN"));
    let token = build(&marker, "us-east-1", "aud", SystemTime::now()).unwrap();
    assert!(percent_decode(token.expose()).contains("MARKER-SESSION-TOKEN"));
    assert!(!format!("{token:?}").contains("MARKER"));
    let req = sign_request(&marker, &sts_url("us-east-1"), "us-east-1", "aud", SystemTime::now()).unwrap();
    let shown = format!("{req:?} {}", req.authorization_summary());
    assert!(!shown.contains("MARKER-S") && !shown.contains("Signature="), "{shown}");
    let e = build_for_url(&marker, "https://", "us-east-1", "aud", SystemTime::now()).unwrap_err();
    assert!(!format!("{e} {e:?}").contains("MARKER"));
  }
}
