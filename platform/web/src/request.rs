//! Per-request facts handlers need: the request id, the client address, and cookies.

use std::net::IpAddr;
use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response};

use crate::AppState;

/// The request's id (set by the tracing layer), for audit rows.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn request_id(req: &Request) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}

/// The client's address as found once per request by [`find_client`].
#[derive(Clone, Debug)]
pub struct ClientAddr(pub IpAddr);

/// The client's address: the TCP peer, or — when the peer is one of the trusted proxies
/// (`PORTAL_TRUSTED_PROXIES`) — the right-most address in `X-Forwarded-For` that is not a
/// trusted proxy itself. Everything that limits or audits by address uses this one value.
pub fn client_addr(req: &Request) -> Option<String> {
    req.extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.to_string())
        .or_else(|| peer(req).map(|ip| ip.to_string()))
}

fn peer(req: &Request) -> Option<IpAddr> {
    req.remote_addr().as_socket_addr().map(|a| a.ip())
}

/// Believes `X-Forwarded-For` only from trusted peers, and within it only up to the first
/// (right-most) hop that is not a trusted proxy: a client can prepend anything it likes, but
/// cannot make a trusted proxy append a lie.
pub fn resolve_client(peer: IpAddr, forwarded_for: &[&str], trusted: &[ipnet::IpNet]) -> IpAddr {
    // A server listening on [::] sees IPv4 peers as ::ffff:a.b.c.d; compare them as IPv4.
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage in the header: stop at the last hop we could read.
            None => break,
        }
    }
    client
}

/// One hop of `X-Forwarded-For`: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`) or in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

/// Middleware: finds the client's address once and keeps it in the request.
pub async fn find_client<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    if let (Some(peer), Some(state)) = (peer(&req), req.data::<AppState>()) {
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let client = resolve_client(peer, &forwarded, &state.trusted_proxies);
        req.extensions_mut().insert(ClientAddr(client));
    }
    ep.call(req).await.map(IntoResponse::into_response)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // Straight from the internet: the peer, whatever the header claims.
        assert_eq!(
            resolve_client(ip("203.0.113.9"), &["198.51.100.1"], &trusted),
            ip("203.0.113.9")
        );
        // Through the proxy: the hop it saw.
        assert_eq!(
            resolve_client(ip("10.0.0.2"), &["198.51.100.1"], &trusted),
            ip("198.51.100.1")
        );
        // A client's own prepended value is ignored; two proxies are skipped.
        assert_eq!(
            resolve_client(
                ip("10.0.0.2"),
                &["1.2.3.4, 198.51.100.1", "10.0.0.7"],
                &trusted
            ),
            ip("198.51.100.1")
        );
        // Ports and brackets are read too, and IPv4-mapped peers match IPv4 ranges.
        assert_eq!(
            resolve_client(ip("::ffff:10.0.0.2"), &["198.51.100.1:4321"], &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            resolve_client(ip("10.0.0.2"), &["[2001:db8::9]:443"], &trusted),
            ip("2001:db8::9")
        );
        // No header, or only garbage: the proxy itself.
        assert_eq!(
            resolve_client(ip("10.0.0.2"), &[], &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            resolve_client(ip("10.0.0.2"), &["not-an-ip"], &trusted),
            ip("10.0.0.2")
        );
    }
}
