//! `GET /`, `/app.js`, `/app.css`: the browser chat client, shipped inside the Worker, and
//! `/roomgate-client.js`, the client library it is built on (`client/`, the npm package).
//!
//! The files live in `page/` and `client/src/` and are compiled in with `include_str!`:
//! no asset binding, no build step, one deployable, and one client implementation. The Content-Security-Policy allows only same-origin
//! scripts, styles and connections (no inline script or style), so even a rendering bug
//! could not run injected code or send a token elsewhere. Responses are revalidated on
//! every load (`no-cache` + a content `ETag`), so a deploy never mixes an old page with a
//! new script, and an unchanged page costs a 304.

use sha2::{Digest, Sha256};
use worker::{Headers, Request, Response};

use crate::runtime::error::ApiError;

/// One file of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Index,
    Script,
    Style,
    /// The client library, as an ES module.
    Client,
}

impl Asset {
    fn body(self) -> &'static str {
        match self {
            Self::Index => include_str!("page/index.html"),
            Self::Script => include_str!("page/app.js"),
            Self::Style => include_str!("page/app.css"),
            Self::Client => include_str!("../../client/src/index.js"),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Index => "text/html; charset=utf-8",
            Self::Script | Self::Client => "text/javascript; charset=utf-8",
            Self::Style => "text/css; charset=utf-8",
        }
    }
}

/// `connect-src 'self'` covers `ws:`/`wss:` to this host (CSP Level 3).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A strong validator for `body`: the first 128 bits of its SHA-256, quoted.
fn etag(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether an `If-None-Match` value matches `tag` (a list, `*`, or weak forms).
fn not_modified(if_none_match: &str, tag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == tag)
}

/// Every header of `asset`'s response, status aside.
fn headers_for(asset: Asset, tag: &str) -> [(&'static str, String); 6] {
    [
        ("content-type", asset.content_type().to_owned()),
        ("cache-control", "no-cache".to_owned()),
        ("etag", tag.to_owned()),
        (
            "content-security-policy",
            CONTENT_SECURITY_POLICY.to_owned(),
        ),
        ("x-content-type-options", "nosniff".to_owned()),
        ("referrer-policy", "no-referrer".to_owned()),
    ]
}

/// Serves `asset`, or 304 when the client's copy is current.
pub fn serve(req: &Request, asset: Asset) -> Result<Response, ApiError> {
    let body = asset.body();
    let tag = etag(body);
    let headers = Headers::new();
    for (name, value) in headers_for(asset, &tag) {
        headers.set(name, &value)?;
    }
    let cached = req
        .headers()
        .get("if-none-match")?
        .is_some_and(|v| not_modified(&v, &tag));
    let response = if cached {
        Response::empty()?.with_status(304)
    } else {
        Response::ok(body)?
    };
    Ok(response.with_headers(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_its_script_and_style_from_this_origin_only() {
        let html = Asset::Index.body();
        assert!(html.contains(r#"<script type="module" src="/app.js"></script>"#));
        assert!(html.contains(r#"<link rel="stylesheet" href="/app.css">"#));
        // No inline script or style: the CSP would block them.
        assert_eq!(html.matches("<script").count(), 1);
        assert!(!html.contains("<style") && !html.contains(" style=") && !html.contains(" on"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }

    #[test]
    fn the_script_never_renders_data_as_html_nor_puts_a_token_in_a_url() {
        let js = Asset::Script.body();
        for risky in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.contains(risky), "app.js uses {risky}");
        }
        assert!(!js.contains("token=") && !js.contains("\"bearer."));
    }

    #[test]
    fn etags_are_stable_and_match_lists_and_weak_forms() {
        let tag = etag("abc");
        assert_eq!(tag, etag("abc"));
        assert_ne!(tag, etag("abd"));
        assert_eq!(tag.len(), 34);
        assert!(not_modified(&tag, &tag));
        assert!(not_modified(&format!("\"x\", W/{tag}"), &tag));
        assert!(not_modified("*", &tag));
        assert!(!not_modified("\"x\"", &tag));
    }

    #[test]
    fn every_asset_gets_its_type_and_the_security_headers() {
        for asset in [Asset::Index, Asset::Script, Asset::Style, Asset::Client] {
            let headers = headers_for(asset, "\"t\"");
            let names: Vec<_> = headers.iter().map(|(n, _)| *n).collect();
            assert!(names.contains(&"content-security-policy"));
            assert!(names.contains(&"x-content-type-options"));
            assert!(headers[0].1.ends_with("charset=utf-8"));
        }
    }
}
