//! A loopback HTTP/1.1 server for unit tests: binds `127.0.0.1:0`, records every request and
//! answers with whatever the test's handler returns (after an optional delay). One request per
//! connection (`connection: close`). Never reaches anything but loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Recorded {
  pub method: String,
  pub path: String,
  /// Lower-case names.
  pub headers: Vec<(String, String)>,
  pub body: String,
}

impl Recorded {
  pub fn header(&self, name: &str) -> Option<&str> {
    self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
  }

  /// Form fields, percent-decoded (`+` is a space).
  pub fn form(&self) -> Vec<(String, String)> {
    self
      .body
      .split('&')
      .filter(|p| !p.is_empty())
      .map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (form_decode(k), form_decode(v))
      })
      .collect()
  }

  pub fn form_field(&self, name: &str) -> Option<String> {
    self.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
  }
}

fn form_decode(s: &str) -> String {
  decode(s, true)
}

/// Percent-decoding (the inverse of `encodeURIComponent`).
pub fn percent_decode(s: &str) -> String {
  decode(s, false)
}

fn decode(s: &str, plus_as_space: bool) -> String {
  let b = s.as_bytes();
  let mut out = Vec::new();
  let mut i = 0;
  while i < b.len() {
    match b[i] {
      b'+' if plus_as_space => out.push(b' '),
      b'%' => {
        out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
        i += 2;
      }
      c => out.push(c),
    }
    i += 1;
  }
  String::from_utf8(out).unwrap()
}

#[derive(Debug, Clone)]
pub struct Canned {
  pub status: u16,
  pub body: String,
  pub delay: Duration,
}

pub fn reply(status: u16, body: &str) -> Canned {
  Canned { status, body: body.to_string(), delay: Duration::ZERO }
}

/// `handler(request, how many earlier requests had the same path)`.
pub type Handler = Arc<dyn Fn(&Recorded, usize) -> Canned + Send + Sync>;

pub struct TestServer {
  pub base: String,
  requests: Arc<Mutex<Vec<Recorded>>>,
}

impl TestServer {
  pub async fn start(handler: impl Fn(&Recorded, usize) -> Canned + Send + Sync + 'static) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (log, handler): (_, Handler) = (requests.clone(), Arc::new(handler));
    tokio::spawn(async move {
      while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve(stream, log.clone(), handler.clone()));
      }
    });
    TestServer { base, requests }
  }

  pub fn url(&self, path: &str) -> String {
    format!("{}{path}", self.base)
  }

  pub fn requests(&self) -> Vec<Recorded> {
    self.requests.lock().unwrap().clone()
  }

  pub fn count(&self, path: &str) -> usize {
    self.requests().iter().filter(|r| r.path == path).count()
  }
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
  let mut buf = Vec::new();
  let mut chunk = [0u8; 4096];
  let head_end = loop {
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
      break i;
    }
    let n = stream.read(&mut chunk).await.ok()?;
    if n == 0 {
      return None;
    }
    buf.extend_from_slice(&chunk[..n]);
  };
  let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
  let mut lines = head.split("\r\n");
  let mut first = lines.next()?.split(' ');
  let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
  let headers: Vec<(String, String)> =
    lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))).collect();
  let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
  let mut body = buf[head_end + 4..].to_vec();
  while body.len() < len {
    let n = stream.read(&mut chunk).await.ok()?;
    if n == 0 {
      break;
    }
    body.extend_from_slice(&chunk[..n]);
  }
  Some(Recorded { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

async fn serve(mut stream: TcpStream, log: Arc<Mutex<Vec<Recorded>>>, handler: Handler) {
  let Some(req) = read_request(&mut stream).await else { return };
  let seen = {
    let mut log = log.lock().unwrap();
    let seen = log.iter().filter(|r| r.path == req.path).count();
    log.push(req.clone());
    seen
  };
  let canned = handler(&req, seen);
  tokio::time::sleep(canned.delay).await;
  let response = format!(
    "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
    canned.status,
    canned.body.len(),
    canned.body
  );
  let _ = stream.write_all(response.as_bytes()).await;
  let _ = stream.shutdown().await;
}
