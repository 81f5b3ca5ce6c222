//! The three byte encodings the Google steps need, written once and pinned by tests (reqwest is
//! built without its `form`/`json` features, and no encoding crate is a dependency).
//!
//! * [`encode_uri_component`]: ECMAScript `encodeURIComponent` (ECMA-262 §19.2.6.5). UTF-8 bytes
//!   are percent-encoded with upper-case hex, except the unreserved set `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
//!   google-auth-library serialises the AWS subject token with it.
//! * [`form_urlencode`]: the WHATWG `application/x-www-form-urlencoded` serializer (what
//!   `URLSearchParams.toString()` produces): unreserved `A-Z a-z 0-9 * - . _`, space → `+`, every
//!   other byte percent-encoded with upper-case hex, pairs joined by `&`.
//! * [`base64`]: RFC 4648 §4 base64 with padding, for HTTP Basic client authentication (RFC 7617).

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn percent_encode(input: &str, keep: impl Fn(u8) -> bool, space_as_plus: bool) -> String {
  let mut out = String::with_capacity(input.len() * 3);
  for b in input.bytes() {
    if keep(b) {
      out.push(b as char);
    } else if space_as_plus && b == b' ' {
      out.push('+');
    } else {
      out.push('%');
      out.push(hex_digit(b >> 4));
      out.push(hex_digit(b & 0xf));
    }
  }
  out
}

/// The upper-case hex digit of a nibble (0..=15).
fn hex_digit(n: u8) -> char {
  HEX.get(usize::from(n & 0xf)).map_or('0', |c| *c as char)
}

/// JavaScript `encodeURIComponent`. (Rust strings cannot hold the lone surrogates for which
/// JavaScript throws `URIError`, so this cannot fail.)
pub fn encode_uri_component(input: &str) -> String {
  percent_encode(input, |b| b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b), false)
}

/// One form-urlencoded name or value.
pub fn form_component(input: &str) -> String {
  percent_encode(input, |b| b.is_ascii_alphanumeric() || b"*-._".contains(&b), true)
}

/// `name=value&name=value`, as `new URLSearchParams(pairs).toString()`.
pub fn form_urlencode(pairs: &[(&str, &str)]) -> String {
  pairs.iter().map(|(k, v)| format!("{}={}", form_component(k), form_component(v))).collect::<Vec<_>>().join("&")
}

/// Standard base64 with `=` padding.
pub fn base64(input: &[u8]) -> String {
  const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
  for chunk in input.chunks(3) {
    let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
    for i in 0..4 {
      if i <= chunk.len() {
        out.push(ALPHABET.get((n >> (18 - 6 * i) & 0x3f) as usize).map_or('=', |c| *c as char));
      } else {
        out.push('=');
      }
    }
  }
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn encode_uri_component_matches_javascript() {
    // Expected values from node: encodeURIComponent(…).
    assert_eq!(encode_uri_component("A-Z_.!~*'()"), "A-Z_.!~*'()");
    assert_eq!(encode_uri_component("é😀 /?:@&=+$,#[]"), "%C3%A9%F0%9F%98%80%20%2F%3F%3A%40%26%3D%2B%24%2C%23%5B%5D");
    assert_eq!(encode_uri_component("{\"a\":\"b;c\"}"), "%7B%22a%22%3A%22b%3Bc%22%7D");
    assert_eq!(encode_uri_component("\u{0}\n%"), "%00%0A%25");
    let kept: String = (0u8..128).map(char::from).filter(|c| encode_uri_component(&c.to_string()) == c.to_string()).collect();
    assert_eq!(kept, "!'()*-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~");
  }

  #[test]
  fn form_encoding_matches_url_search_params() {
    // Expected from node: new URLSearchParams([["a b","c+d"],["e","~!'()*-._/"]]).toString()
    assert_eq!(form_urlencode(&[("a b", "c+d"), ("e", "~!'()*-._/")]), "a+b=c%2Bd&e=%7E%21%27%28%29*-._%2F");
    assert_eq!(form_urlencode(&[("scope", "https://x/y z"), ("t", "é%")]), "scope=https%3A%2F%2Fx%2Fy+z&t=%C3%A9%25");
    assert_eq!(form_urlencode(&[]), "");
  }

  #[test]
  fn base64_matches_rfc4648_vectors() {
    for (plain, encoded) in
      [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
    {
      assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
    }
    assert_eq!(base64(&[0xfb, 0xff, 0xfe]), "+//+");
  }
}
