//! The HTTP side: one blocking client per fetch, requests that never follow redirects on their
//! own (so the token never leaves the hub's origin), status codes mapped to [`DownloadError`],
//! and the retry wait.

use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{LOCATION, RANGE};
use reqwest::{Method, Url};

use super::{DownloadError, DownloadOptions};

/// Redirects followed for one request before giving up.
const MAX_REDIRECTS: usize = 10;
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Scheme, host and port: where a token may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin(String, String, u16);

impl Origin {
    fn of(url: &Url) -> Origin {
        Origin(
            url.scheme().to_string(),
            url.host_str().unwrap_or("").to_ascii_lowercase(),
            url.port_or_known_default().unwrap_or(0),
        )
    }
}

/// The client, the hub endpoint and the token (sent to the endpoint's origin only).
pub(crate) struct Http {
    client: Client,
    endpoint: Url,
    endpoint_origin: Origin,
    token: Option<String>,
}

impl Http {
    /// A client for `options` (timeouts, endpoint, token).
    pub fn new(options: &DownloadOptions) -> Result<Http, DownloadError> {
        let invalid_endpoint = |reason: String| DownloadError::InvalidConfiguration {
            name: "HF_ENDPOINT".into(),
            value: options.endpoint.clone(),
            reason,
        };
        let endpoint =
            Url::parse(&options.endpoint).map_err(|e| invalid_endpoint(e.to_string()))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(invalid_endpoint(
                "expected an http:// or https:// URL".into(),
            ));
        }
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .user_agent(concat!("gguf-loader/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DownloadError::Network {
                url: options.endpoint.clone(),
                reason: describe(&e),
            })?;
        Ok(Http {
            client,
            endpoint_origin: Origin::of(&endpoint),
            endpoint,
            token: options.token.clone(),
        })
    }

    /// The hub's base URL.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// One request, redirects not followed; `Range: bytes=FROM-` when `range_from` is given, and
    /// the token when `url` is on the endpoint's origin.
    pub fn send(
        &self,
        method: Method,
        url: &Url,
        range_from: Option<u64>,
    ) -> Result<Response, DownloadError> {
        let mut request = self.client.request(method, url.clone());
        if let Some(token) = &self.token {
            if Origin::of(url) == self.endpoint_origin {
                request = request.bearer_auth(token);
            }
        }
        if let Some(from) = range_from {
            request = request.header(RANGE, format!("bytes={from}-"));
        }
        request.send().map_err(|e| DownloadError::Network {
            url: url.to_string(),
            reason: describe(&e),
        })
    }

    /// A GET that follows redirects (the token only on the endpoint's origin); returns the
    /// response and the URL that gave it.
    pub fn get(
        &self,
        url: &Url,
        range_from: Option<u64>,
    ) -> Result<(Response, Url), DownloadError> {
        let mut url = url.clone();
        for _ in 0..MAX_REDIRECTS {
            let response = self.send(Method::GET, &url, range_from)?;
            match redirect_target(&url, &response)? {
                Some(target) => {
                    log::debug!("{url} redirects to {target}");
                    url = target;
                }
                None => return Ok((response, url)),
            }
        }
        Err(too_many_redirects(&url))
    }
}

/// Whether two URLs share scheme, host and port.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    Origin::of(a) == Origin::of(b)
}

/// The error for a redirect chain longer than [`MAX_REDIRECTS`].
pub(crate) fn too_many_redirects(url: &Url) -> DownloadError {
    DownloadError::InvalidResponse {
        url: url.to_string(),
        reason: format!("more than {MAX_REDIRECTS} redirects"),
    }
}

/// The number of redirects a resolution may follow.
pub(crate) fn max_redirects() -> usize {
    MAX_REDIRECTS
}

/// Where a redirect response points (resolved against `url`); `None` when it is not a redirect.
pub(crate) fn redirect_target(
    url: &Url,
    response: &Response,
) -> Result<Option<Url>, DownloadError> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = header(response, LOCATION) else {
        return Ok(None);
    };
    url.join(location)
        .map(Some)
        .map_err(|e| DownloadError::InvalidResponse {
            url: url.to_string(),
            reason: format!("redirect to an invalid Location {location:?}: {e}"),
        })
}

/// A header's value as text (`None` when missing or not visible ASCII).
pub(crate) fn header(
    response: &Response,
    name: impl reqwest::header::AsHeaderName,
) -> Option<&str> {
    response.headers().get(name)?.to_str().ok().map(str::trim)
}

/// A header parsed as a number.
pub(crate) fn header_u64(
    response: &Response,
    name: impl reqwest::header::AsHeaderName,
) -> Option<u64> {
    header(response, name)?.parse().ok()
}

/// The error for an unsuccessful status; `what` names what was asked for (for messages).
pub(crate) fn status_error(url: &Url, response: &Response, what: &str) -> DownloadError {
    let status = response.status().as_u16();
    let url = url.to_string();
    match status {
        404 => {
            // The hub says which part is missing.
            let what = match header(response, "x-error-code") {
                Some("RepoNotFound") => format!("{what} (the repository)"),
                Some("RevisionNotFound") => format!("{what} (the revision)"),
                Some("EntryNotFound") => format!("{what} (the file)"),
                _ => what.to_string(),
            };
            DownloadError::NotFound { url, what }
        }
        401 | 403 => DownloadError::Unauthorized {
            url,
            what: what.to_string(),
            status,
        },
        _ => DownloadError::Http { url, status },
    }
}

/// Waits before try number `failures + 1` (the backoff doubles per failure, at most 30 s),
/// returning early with [`DownloadError::Cancelled`] when the flag is set.
pub(crate) fn backoff(
    options: &DownloadOptions,
    failures: u32,
    url: &str,
) -> Result<(), DownloadError> {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    let wait = options.backoff.saturating_mul(factor).min(MAX_BACKOFF);
    let until = Instant::now() + wait;
    loop {
        if options.cancelled() {
            return Err(DownloadError::Cancelled {
                url: url.to_string(),
            });
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

/// An error with its chain of causes (reqwest's own message is terse).
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
