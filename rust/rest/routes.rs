//! The REST API's one routing table: (method, path) -> what to do, as OVMS's regexes route it
//! (`http_rest_api_handler.cpp`). Matched by hand over path segments: the patterns are fixed prefixes
//! plus three kinds of segment (name, digits, word), which a regex engine would only slow down.

use percent_encoding::percent_decode_str;

/// Which version a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// No version (or 0): the default version.
    Default,
    /// `/versions/{n}`; numbers past i64 saturate (no such version exists).
    Version(i64),
    /// `/labels/{label}`.
    Label(String),
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    ModelStatus {
        name: String,
        selector: Selector,
    },
    ModelMetadata {
        name: String,
        selector: Selector,
    },
    Predict {
        name: String,
        selector: Selector,
    },
    /// `:classify` and `:regress` are routed, and answered "not found", as OVMS does.
    NotServed,
    ConfigStatus,
    ConfigReload,
    Metrics,
    Live,
    Ready,
    ModelReady {
        name: String,
        selector: Selector,
    },
    /// OPTIONS on any path (CORS preflight): 200 with an empty body.
    Options,
}

impl Route {
    /// The name Python's REST dispatcher knows this route by (cold-path routes only).
    pub fn kind(&self) -> &'static str {
        match self {
            Route::ModelStatus { .. } => "status",
            Route::ModelMetadata { .. } => "metadata",
            Route::Predict { .. } => "predict",
            Route::NotServed => "not_served",
            Route::ConfigStatus => "config",
            Route::ConfigReload => "reload",
            Route::Metrics => "metrics",
            Route::Live => "live",
            Route::Ready => "ready",
            Route::ModelReady { .. } => "model_ready",
            Route::Options => "options",
        }
    }
}

/// Why a request matched no route; each is a catalogue entry (`ovms_rs.errors`), HTTP 400 or 406.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// REST_INVALID_URL, 400.
    InvalidUrl,
    /// REST_UNSUPPORTED_METHOD, 406.
    UnsupportedMethod,
    /// PATH_INVALID (a `..` in the path), 400.
    PathInvalid,
}

impl RouteError {
    pub fn status(self) -> u16 {
        match self {
            RouteError::UnsupportedMethod => 406,
            RouteError::InvalidUrl | RouteError::PathInvalid => 400,
        }
    }

    /// OVMS's message (src/status.cpp); `tests/rest` checks these against the Python catalogue.
    pub fn message(self) -> &'static str {
        match self {
            RouteError::InvalidUrl => "Invalid request URL",
            RouteError::UnsupportedMethod => "Unsupported method",
            RouteError::PathInvalid => "The provided base path is invalid or doesn't exists",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// Routes one request. `path` is the URL path without the query.
pub fn route(method: &str, path: &str) -> Result<Route, RouteError> {
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "OPTIONS" => return Ok(Route::Options),
        _ => return Err(RouteError::UnsupportedMethod),
    };
    if path.contains("..") {
        return Err(RouteError::PathInvalid);
    }
    // OVMS's patterns start with `(.?)`: one extra leading character (`//v1/...`) still matches.
    let path = if path.starts_with("//") {
        &path[1..]
    } else {
        path
    };
    let (route, wanted) = match_path(path).ok_or(RouteError::InvalidUrl)?;
    if wanted != method {
        return Err(RouteError::UnsupportedMethod);
    }
    Ok(route)
}

fn match_path(path: &str) -> Option<(Route, Method)> {
    use Method::*;
    Some(match path {
        "/v2/health/live" => (Route::Live, Get),
        "/v2/health/ready" => (Route::Ready, Get),
        "/metrics" => (Route::Metrics, Get),
        "/v1/config" => (Route::ConfigStatus, Get),
        "/v1/config/reload" => (Route::ConfigReload, Post),
        _ => {
            if let Some(rest) = path.strip_prefix("/v1/models") {
                return v1_models(rest);
            }
            let rest = path.strip_prefix("/v2/models/")?.strip_suffix("/ready")?;
            let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
            let selector = match rest.strip_prefix("versions/") {
                Some(v) => Selector::Version(digits(v)?),
                None if rest.is_empty() => Selector::Default,
                None => return None,
            };
            (
                Route::ModelReady {
                    name: decode(name)?,
                    selector,
                },
                Get,
            )
        }
    })
}

/// Everything after `/v1/models`: `[/{name}][/versions/{n}|/labels/{label}]` then `:verb` (POST) or
/// `[/metadata]` (GET).
fn v1_models(rest: &str) -> Option<(Route, Method)> {
    if rest.is_empty() {
        // GET /v1/models: a status request naming no model (answered "not found", as in OVMS).
        return Some((
            Route::ModelStatus {
                name: String::new(),
                selector: Selector::Default,
            },
            Method::Get,
        ));
    }
    let rest = rest.strip_prefix('/')?;
    let name_end = rest.find(['/', ':']).unwrap_or(rest.len());
    let (name, mut rest) = rest.split_at(name_end);
    if name.is_empty() {
        return None;
    }
    let name = decode(name)?;
    let mut selector = Selector::Default;
    if let Some(after) = rest.strip_prefix("/versions/") {
        let end = after.find(['/', ':']).unwrap_or(after.len());
        selector = Selector::Version(digits(&after[..end])?);
        rest = &after[end..];
    } else if let Some(after) = rest.strip_prefix("/labels/") {
        let end = after.find(['/', ':']).unwrap_or(after.len());
        let label = &after[..end];
        if label.is_empty()
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return None;
        }
        selector = Selector::Label(label.to_owned());
        rest = &after[end..];
    }
    Some(match rest {
        "" => (Route::ModelStatus { name, selector }, Method::Get),
        "/metadata" => (Route::ModelMetadata { name, selector }, Method::Get),
        ":predict" => (Route::Predict { name, selector }, Method::Post),
        ":classify" | ":regress" => (Route::NotServed, Method::Post),
        _ => return None,
    })
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(i64::MAX))
}

fn decode(name: &str) -> Option<String> {
    percent_decode_str(name)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, selector: Selector) -> Route {
        Route::ModelStatus {
            name: name.into(),
            selector,
        }
    }

    #[test]
    fn model_paths() {
        assert_eq!(
            route("GET", "/v1/models/resnet"),
            Ok(status("resnet", Selector::Default))
        );
        assert_eq!(
            route("GET", "/v1/models/resnet/versions/2"),
            Ok(status("resnet", Selector::Version(2)))
        );
        assert_eq!(
            route("GET", "/v1/models/res%20net/labels/stable_1/metadata"),
            Ok(Route::ModelMetadata {
                name: "res net".into(),
                selector: Selector::Label("stable_1".into())
            })
        );
        assert_eq!(
            route("POST", "/v1/models/m/versions/99999999999999999999:predict"),
            Ok(Route::Predict {
                name: "m".into(),
                selector: Selector::Version(i64::MAX)
            })
        );
        assert_eq!(route("POST", "/v1/models/m:classify"), Ok(Route::NotServed));
        assert_eq!(
            route("GET", "//v1/models/m"),
            Ok(status("m", Selector::Default))
        );
        assert_eq!(
            route("GET", "/v1/models"),
            Ok(status("", Selector::Default))
        );
    }

    #[test]
    fn fixed_paths_and_health() {
        assert_eq!(route("GET", "/v2/health/live"), Ok(Route::Live));
        assert_eq!(route("GET", "/v2/health/ready"), Ok(Route::Ready));
        assert_eq!(route("POST", "/v1/config/reload"), Ok(Route::ConfigReload));
        assert_eq!(route("GET", "/v1/config"), Ok(Route::ConfigStatus));
        assert_eq!(route("GET", "/metrics"), Ok(Route::Metrics));
        assert_eq!(
            route("GET", "/v2/models/m/versions/3/ready"),
            Ok(Route::ModelReady {
                name: "m".into(),
                selector: Selector::Version(3)
            })
        );
        assert_eq!(route("OPTIONS", "/anything"), Ok(Route::Options));
    }

    #[test]
    fn refusals() {
        use RouteError::*;
        assert_eq!(route("GET", "/v1/models/m:predict"), Err(UnsupportedMethod));
        assert_eq!(route("POST", "/v1/models/m"), Err(UnsupportedMethod));
        assert_eq!(route("GET", "/v1/config/reload"), Err(UnsupportedMethod));
        assert_eq!(route("POST", "/metrics"), Err(UnsupportedMethod));
        assert_eq!(route("PUT", "/v1/models/m"), Err(UnsupportedMethod));
        assert_eq!(route("GET", "/v1/models/m/versions/x"), Err(InvalidUrl));
        assert_eq!(route("GET", "/v1/models/m/labels/a-b"), Err(InvalidUrl));
        assert_eq!(route("GET", "/v1/models/m/other"), Err(InvalidUrl));
        assert_eq!(route("GET", "/nope"), Err(InvalidUrl));
        assert_eq!(route("GET", "/v1/models/../etc"), Err(PathInvalid));
        assert_eq!(
            route("GET", "/v2/models/m/versions/1/x/ready"),
            Err(InvalidUrl)
        );
    }
}
