//! The browser client's files over HTTP: types, the Content-Security-Policy, caching.
//! (What the page does in a browser is `tests/browser.rs`.)
use roomgate_harness::http::Reply;
use roomgate_harness::runtime::server;

#[tokio::test]
async fn page_script_and_style_are_served_with_their_type_and_a_strict_policy() {
    let s = server();
    for (path, media_type, needle) in [
        ("/", "text/html", "<form id=\"login-form\""),
        ("/app.js", "text/javascript", "/ws-ticket"),
        ("/app.css", "text/css", "#messages"),
        ("/roomgate-client.js", "text/javascript", "roomgate.v2"),
    ] {
        let res = s
            .http()
            .get(format!("{}{path}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let h = res.headers().clone();
        let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(header("content-type").starts_with(media_type), "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"));
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        let etag = header("etag").to_owned();
        assert!(etag.starts_with('"'), "{path}: {etag:?}");
        assert!(res.text().await.unwrap().contains(needle), "{path}");

        // Revalidation: an unchanged file costs a 304 with no body.
        let again = s
            .http()
            .get(format!("{}{path}", s.url))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(again.text().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_page_is_get_only() {
    let s = server();
    for path in ["/", "/app.js", "/app.css", "/roomgate-client.js"] {
        let res = s
            .http()
            .post(format!("{}{path}", s.url))
            .send()
            .await
            .unwrap();
        Reply::from(res)
            .await
            .expect_error(405, "method_not_allowed", path);
    }
}
