//! The `Origin` allowlist: the defence against cross-site WebSocket hijacking.
//!
//! Browsers always send `Origin` on a WebSocket upgrade, and a page on another site must
//! not open sockets with the user's credentials. Clients that send no `Origin` (servers,
//! devices) are not browsers and pass. The list comes from `ALLOWED_ORIGINS`, normalized
//! by the configuration (lowercase, no trailing `/`); with no list the check is off.

/// Whether a request with `origin` may open a socket, given the allowed origins (`None`:
/// any).
pub fn origin_allowed(allowed: Option<&[String]>, origin: Option<&str>) -> bool {
    let (Some(allowed), Some(origin)) = (allowed, origin) else {
        return true;
    };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    allowed.contains(&origin)
}

/// The origin a cross-origin (CORS) answer may name: `origin`, normalized, when it is in
/// the explicit list. Without a list nobody gets CORS headers: `ALLOWED_ORIGINS` unset
/// lets any page open sockets, but no page of another origin read `/login`.
pub fn cors_origin(allowed: Option<&[String]>, origin: Option<&str>) -> Option<String> {
    let origin = origin?.trim().trim_end_matches('/').to_ascii_lowercase();
    allowed?.contains(&origin).then_some(origin)
}

/// Whether a request to `url` carrying `origin` comes from that same origin (or from no
/// browser page at all: no `Origin`). The server-facing routes (`/admin`, `/api/v1`)
/// answer nothing else, so no web page can drive them with a key it holds.
pub fn same_origin(url: &str, origin: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let own = format!("{scheme}://{host}").to_ascii_lowercase();
    origin.trim().trim_end_matches('/').to_ascii_lowercase() == own
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_names_only_listed_origins() {
        let list = ["https://app.example".to_owned()];
        let allowed = Some(&list[..]);
        assert_eq!(
            cors_origin(allowed, Some("https://App.example/")),
            Some("https://app.example".into())
        );
        assert_eq!(cors_origin(allowed, Some("https://evil.example")), None);
        assert_eq!(cors_origin(allowed, None), None);
        assert_eq!(cors_origin(None, Some("https://app.example")), None);
        assert_eq!(cors_origin(Some(&[]), Some("https://app.example")), None);
    }

    #[test]
    fn same_origin_table() {
        let url = "https://rg.example/api/v1/rooms?cursor=a";
        assert!(same_origin(url, None));
        assert!(same_origin(url, Some("https://rg.example")));
        assert!(same_origin(url, Some("HTTPS://RG.example/")));
        assert!(same_origin(
            "http://127.0.0.1:8787/admin/users",
            Some("http://127.0.0.1:8787")
        ));
        for other in [
            "https://app.example",
            "http://rg.example",
            "https://rg.example:8443",
            "https://rg.example.evil",
            "null",
            "",
        ] {
            assert!(!same_origin(url, Some(other)), "{other:?}");
        }
        assert!(!same_origin("not a url", Some("https://rg.example")));
    }

    #[test]
    fn origins_table() {
        let list = ["https://app.example".to_owned()];
        let cases = [
            (None, Some("https://evil.example"), true),
            (Some(&list[..]), None, true),
            (Some(&list[..]), Some("https://app.example"), true),
            (Some(&list[..]), Some(" HTTPS://App.Example/ "), true),
            (Some(&list[..]), Some("https://evil.example"), false),
            (Some(&list[..]), Some("https://app.example.evil"), false),
            (Some(&list[..]), Some("null"), false),
            (Some(&[][..]), Some("https://app.example"), false),
        ];
        for (allowed, origin, want) in cases {
            assert_eq!(
                origin_allowed(allowed, origin),
                want,
                "{allowed:?} {origin:?}"
            );
        }
    }
}
