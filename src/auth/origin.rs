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

#[cfg(test)]
mod tests {
    use super::*;

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
