//! Per-request facts handlers need: the request id, the client address, and cookies.

use poem::Request;

/// The request's id (set by the tracing layer), for audit rows.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn request_id(req: &Request) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

/// The client's address: the TCP peer. (Behind a proxy, the proxy must be the one to rewrite
/// this; trusting `X-Forwarded-For` from anyone would let clients dodge throttling.)
pub fn client_addr(req: &Request) -> Option<String> {
    req.remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_string())
}

/// The value of cookie `name`, if sent.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The first value of field `name` in a form read as name/value pairs ("" when absent); for
/// forms with repeated fields or provider callbacks with open-ended fields.
pub fn form_field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}
