//! The request pipeline, in Binance's order: route, the forced 418/429 faults, the
//! weight limit, authentication, the handler, the drawn 5xx faults, the weight charged,
//! the answer with its headers, and the request log.
use super::*;

// The limiter's clock: tokio's, so paused time in a test moves it (see rate_limit).
use tokio::time::Instant;

/// One Binance answer before it becomes an HTTP response.
struct Answer {
    status: StatusCode,
    body: String,
    code: Option<i64>,
    weight: u32,
    family: Option<Family>,
    retry_after: Option<u64>,
    used: (u64, u64),
}

impl Answer {
    fn error(e: &ApiError, family: Option<Family>) -> Answer {
        Answer {
            status: e.status,
            body: e.body().to_string(),
            code: Some(e.code),
            weight: 0,
            family,
            retry_after: None,
            used: (0, 0),
        }
    }
}

/// The fault draws for one request, made before it runs so a seed repeats them exactly.
#[derive(Debug, Clone, Copy, Default)]
struct Draw {
    swallow: bool,
    /// Answer 5xx: (status, whether the request still took effect).
    error: Option<(StatusCode, bool)>,
}

fn draw(shared: &Shared, faults: &Faults) -> Draw {
    if faults.timeout_rate <= 0.0 && faults.error_rate <= 0.0 {
        return Draw::default();
    }
    let mut rng = lock(&shared.rng);
    let swallow = faults.timeout_rate > 0.0 && rng.f64() < faults.timeout_rate;
    let error = (faults.error_rate > 0.0 && rng.f64() < faults.error_rate).then(|| {
        let status = [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
        ][rng.usize(0..3)];
        // Half the failures happen after the request took effect: like Binance, a 5xx
        // says nothing about whether an order was placed or cancelled.
        (status, rng.bool())
    });
    Draw { swallow, error }
}

fn server_error(status: StatusCode) -> (String, Option<i64>) {
    match status {
        StatusCode::BAD_GATEWAY => (
            "<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
                .into(),
            None,
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            r#"{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}"#.into(),
            Some(-1001),
        ),
        _ => (
            r#"{"code":-1000,"msg":"An unknown error occurred while processing the request."}"#
                .into(),
            Some(-1000),
        ),
    }
}

pub(super) async fn handle(
    AxumState(shared): AxumState<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let raw_query = uri.query().unwrap_or("").to_string();
    let body = String::from_utf8_lossy(&body).into_owned();
    let logged_query = Params::without_signature(&raw_query, &body);

    if path == "/sim" || path.starts_with("/sim/") {
        let (status, value) = control::handle(&shared, &method, &path, &raw_query);
        shared.push_log(
            Actor::Control,
            method.as_str(),
            &path,
            logged_query,
            Outcome {
                status: status.as_u16(),
                code: None,
                weight: 0,
            },
        );
        return json_response(status, value.to_string(), &[]);
    }

    let faults = shared.faults();
    let mut draw = draw(&shared, &faults);
    if faults.failing.contains(&path) {
        draw.error = Some((StatusCode::SERVICE_UNAVAILABLE, false));
    }
    // The latency is a round trip over a symmetric link: the request travels half of it
    // before the exchange acts on it, the answer the other half. So the exchange stamps
    // its clock, checks `recvWindow`, counts weight and changes its books half-way, as
    // Binance does when a request reaches it; the log's time is still when the answer
    // is back (the round trip's end).
    let (there, back) = (faults.latency / 2, faults.latency - faults.latency / 2);
    if !there.is_zero() {
        shared.delays.wait(there).await;
    }
    if draw.swallow {
        return swallow(&shared, &method, &path, logged_query).await;
    }

    let answer = process(
        &shared,
        &method,
        &path,
        &raw_query,
        &body,
        &headers,
        shared.client_ip.unwrap_or(peer.ip()),
        draw,
        &faults,
    );
    let headers = limit_headers(&answer);
    let response = json_response(answer.status, answer.body, &headers);
    if !back.is_zero() {
        shared.delays.wait(back).await;
    }
    shared.push_log(
        Actor::Client,
        method.as_str(),
        &path,
        logged_query,
        Outcome {
            status: answer.status.as_u16(),
            code: answer.code,
            weight: answer.weight,
        },
    );
    response
}

/// Accepted and never answered: the client's own timeout has to fire. Released only
/// when the server stops, so shutdown is not held up.
async fn swallow(shared: &Shared, method: &Method, path: &str, logged_query: String) -> Response {
    shared.push_log(
        Actor::Client,
        method.as_str(),
        path,
        logged_query,
        Outcome {
            status: 0,
            code: None,
            weight: 0,
        },
    );
    let mut stop = shared.shutdown.clone();
    let _ = stop.wait_for(|s| *s).await;
    json_response(StatusCode::SERVICE_UNAVAILABLE, String::new(), &[])
}

/// The weight a family has used, and when to retry, as Binance's headers say them.
fn limit_headers(answer: &Answer) -> Vec<(&'static str, String)> {
    let mut extra: Vec<(&'static str, String)> = Vec::new();
    if let Some(family) = answer.family {
        let (ip, uid) = answer.used;
        extra.push(("x-mbx-used-weight", ip.to_string()));
        extra.push(("x-mbx-used-weight-1m", ip.to_string()));
        if family == Family::Sapi {
            extra.push(("x-sapi-used-ip-weight-1m", ip.to_string()));
            extra.push(("x-sapi-used-uid-weight-1m", uid.to_string()));
        }
    }
    if let Some(secs) = answer.retry_after {
        extra.push(("retry-after", secs.to_string()));
    }
    extra
}

fn json_response(status: StatusCode, body: String, headers: &[(&'static str, String)]) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    response
}

fn window_words(window: Duration) -> String {
    let secs = window.as_secs_f64();
    if (secs - 60.0).abs() < f64::EPSILON {
        "1 MINUTE".into()
    } else {
        format!("{} SECOND", window.as_millis().div_ceil(1000).max(1))
    }
}

#[allow(clippy::too_many_arguments)]
fn process(
    shared: &Shared,
    method: &Method,
    path: &str,
    raw_query: &str,
    body: &str,
    headers: &HeaderMap,
    ip: IpAddr,
    draw: Draw,
    faults: &Faults,
) -> Answer {
    let (family, ep) = match route(shared, method, path) {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if let Some(answer) = forced_limit(shared, family) {
        return answer;
    }
    let params = Params::parse(raw_query, body);
    let now = shared.now_ms();
    let mut state = shared.state();
    let upfront = ep.weight.upfront(&params, &state);
    let limit = shared.limit(family, ep.uid);
    let instant = Instant::now();

    let verdict = lock(&shared.limiters)
        .get_mut(&family.pool())
        .expect("a limiter per family")
        .check(
            instant,
            upfront,
            ep.uid,
            limit,
            family.bans(),
            shared.window * 2,
        );
    if !matches!(verdict, Verdict::Allowed) {
        drop(state);
        return over_limit(shared, family, verdict, limit, now, instant);
    }

    let limits = Limits {
        api: shared.limit(Family::Api, false),
        fapi: shared.limit(Family::Fapi, false),
        window: shared.window,
    };
    // A 5xx drawn to strike before the request takes effect skips the handler (the error
    // is a placeholder the 5xx answer replaces). The answer is written as text once the
    // state is unlocked: a thousand orders take milliseconds, other requests wait on it.
    let result: Result<(Option<Rendered>, serde_json::Value), ApiError> = match draw.error {
        Some((status, false)) => Err(ApiError::new(status, 0, String::new())),
        _ => (|| {
            let key = match ep.security {
                Security::Public => None,
                Security::Signed(need) => Some(authenticate(
                    &state, family, headers, raw_query, body, &params, need, ip, now,
                )?),
            };
            let mut ctx = Ctx {
                params: &params,
                state: &mut state,
                now,
                family,
                limits,
                key,
                rendered: None,
            };
            let value = (ep.handler)(&mut ctx)?;
            Ok((ctx.rendered.take(), value))
        })(),
    };
    let succeeded = result.is_ok() && draw.error.is_none();
    let weight = ep.weight.charged(&params, &state, succeeded);
    drop(state);
    let result = result.map(|(text, v)| text.map_or_else(|| v.to_string(), |write| write()));
    charge(shared, family, ep.uid, instant, weight);
    let mut answer = answer(draw.error, result, weight, family, faults, path);
    answer.used = used(shared, family);
    answer
}

/// Count the request's weight against its pool's IP or UID limit.
fn charge(shared: &Shared, family: Family, uid: bool, instant: Instant, weight: u32) {
    let mut limiters = lock(&shared.limiters);
    let limiter = limiters
        .get_mut(&family.pool())
        .expect("a limiter per pool");
    if uid {
        limiter.uid.add(instant, weight);
    } else {
        limiter.ip.add(instant, weight);
    }
}

/// The request's family and endpoint, or the 404/405 Binance gives for an unknown path
/// or method (and for /sapi on a testnet).
fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
) -> Result<(Family, &'static endpoints::Endpoint), Answer> {
    let Some(family) = Family::of_path(path) else {
        return Err(Answer::error(
            &ApiError::new(
                StatusCode::NOT_FOUND,
                -1000,
                format!("Unknown path {path}."),
            ),
            None,
        ));
    };
    // Binance's testnets have no /sapi: the path does not exist there.
    let served = !(shared.testnet && family == Family::Sapi);
    let Some(ep) = endpoints::find(method, path).filter(|_| served) else {
        let (status, what) = if served && endpoints::path_known(path) {
            (StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        } else {
            (StatusCode::NOT_FOUND, "Unknown path")
        };
        let mut a = Answer::error(
            &ApiError::new(status, -1000, format!("{what}: {method} {path}.")),
            Some(family),
        );
        a.used = used(shared, family);
        return Err(a);
    };
    Ok((family, ep))
}

/// The 429 (or 418, when the limit was overrun while throttled) for a request over the
/// weight limit.
fn over_limit(
    shared: &Shared,
    family: Family,
    verdict: Verdict,
    limit: u32,
    now: i64,
    instant: Instant,
) -> Answer {
    let mut a = match verdict {
        Verdict::Allowed => unreachable!("only a refused request is answered here"),
        Verdict::TooMany(wait) => {
            let e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                -1003,
                format!(
                    "Too much request weight used; current limit is {limit} request weight per {}. \
                     Please use WebSocket Streams for live updates to avoid polling the API.",
                    window_words(shared.window)
                ),
            );
            let mut a = Answer::error(&e, Some(family));
            a.retry_after = Some(retry_after_secs(wait));
            a
        }
        Verdict::Banned(until) => {
            let left = until.saturating_duration_since(instant);
            let until_ms = now + left.as_millis() as i64;
            let e = ApiError::new(
                StatusCode::IM_A_TEAPOT,
                -1003,
                format!(
                    "Way too much request weight used; IP banned until {until_ms}. \
                     Please use WebSocket Streams for live updates to avoid bans."
                ),
            );
            let mut a = Answer::error(&e, Some(family));
            a.retry_after = Some(retry_after_secs(left));
            a
        }
    };
    a.used = used(shared, family);
    a
}

/// The answer to a request that went through: a drawn 5xx, the handler's value (cut
/// short when the `malformed` fault names the path), or its error.
fn answer(
    error: Option<(StatusCode, bool)>,
    result: Result<String, ApiError>,
    weight: u32,
    family: Family,
    faults: &Faults,
    path: &str,
) -> Answer {
    match (error, result) {
        (Some((status, _)), _) => {
            let (body, code) = server_error(status);
            Answer {
                status,
                body,
                code,
                weight,
                family: Some(family),
                retry_after: None,
                used: (0, 0),
            }
        }
        (None, Ok(mut body)) => {
            if faults.malformed.iter().any(|p| p == path) {
                // Cut mid-value and leave trailing garbage: no JSON parser accepts it.
                body.truncate(body.len() / 2);
                body.push_str("\u{0}<!-- truncated");
            }
            Answer {
                status: StatusCode::OK,
                body,
                code: None,
                weight,
                family: Some(family),
                retry_after: None,
                used: (0, 0),
            }
        }
        (None, Err(e)) => {
            let mut a = Answer::error(&e, Some(family));
            a.weight = weight;
            a
        }
    }
}

/// The `ban` and `throttle` faults: 418 or 429 for every request until they lapse. Read
/// afresh here, after any latency, so a fault set while a request waits applies to it.
fn forced_limit(shared: &Shared, family: Family) -> Option<Answer> {
    let faults = shared.faults();
    let wall = system_now_ms();
    let (status, message, until) = if let Some(until) = faults.ban_until_ms.filter(|u| *u > wall) {
        let until_server = until + faults.clock_skew_ms;
        (
            StatusCode::IM_A_TEAPOT,
            format!(
                "Way too much request weight used; IP banned until {until_server}. \
                 Please use WebSocket Streams for live updates to avoid bans."
            ),
            until,
        )
    } else if let Some(until) = faults.throttle_until_ms.filter(|u| *u > wall) {
        (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too much request weight used; current limit is {} request weight per {}. \
                 Please use WebSocket Streams for live updates to avoid polling the API.",
                shared.limit(family, false),
                window_words(shared.window)
            ),
            until,
        )
    } else {
        return None;
    };
    let mut a = Answer::error(&ApiError::new(status, -1003, message), Some(family));
    a.retry_after = Some(retry_after_secs(Duration::from_millis(
        (until - wall).max(0) as u64,
    )));
    a.used = used(shared, family);
    Some(a)
}

/// (IP weight, UID weight) used in the window for a family's pool (`/fapi` and `/dapi`
/// report the same, shared figure).
fn used(shared: &Shared, family: Family) -> (u64, u64) {
    let now = Instant::now();
    let mut limiters = lock(&shared.limiters);
    let l = limiters
        .get_mut(&family.pool())
        .expect("a limiter per pool");
    (l.ip.used(now), l.uid.used(now))
}

fn invalid_key(family: Family, ip: IpAddr) -> ApiError {
    let mut msg = "Invalid API-key, IP, or permissions for action".to_string();
    if matches!(family, Family::Fapi | Family::Dapi) {
        msg.push_str(&format!(", request ip: {ip}"));
    } else {
        msg.push('.');
    }
    ApiError::new(StatusCode::UNAUTHORIZED, -2015, msg)
}

/// Binance's checks on a signed request, in the order that decides which error a client
/// sees: key present and well-formed, key known and live, IP allowed, timestamp, then
/// signature, then permission.
#[allow(clippy::too_many_arguments)]
fn authenticate(
    state: &State,
    family: Family,
    headers: &HeaderMap,
    raw_query: &str,
    body: &str,
    params: &Params,
    need: Need,
    ip: IpAddr,
    now: i64,
) -> Result<Key, ApiError> {
    let api_key = headers
        .get("x-mbx-apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if api_key.is_empty() || !well_formed_key(api_key) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            -2014,
            "API-key format invalid.",
        ));
    }
    let Some(key) = state.key_by_api_key(api_key).filter(|k| !k.deleted) else {
        // /api/v3 does not say whether a key exists; /sapi and the futures APIs do.
        return Err(match family {
            Family::Api => invalid_key(family, ip),
            _ => ApiError::new(StatusCode::UNAUTHORIZED, -2008, "Invalid Api-Key ID."),
        });
    };
    if !key.ip_whitelist.is_empty() && !key.ip_whitelist.contains(&ip) {
        return Err(invalid_key(family, ip));
    }
    let signed = split_signature(raw_query, body);
    let Some(signature) = signed.signature.filter(|s| !s.is_empty()) else {
        return Err(ApiError::missing("signature"));
    };
    check_timestamp(params, now)?;
    if !key
        .verifier
        .verify(&key.secret, &signed.payload, &signature)
    {
        return Err(ApiError::bad_request(
            -1022,
            "Signature for this request is not valid.",
        ));
    }
    // Every signed /fapi and /dapi call, reads included, needs "Enable Futures".
    let futures_ok = !matches!(family, Family::Fapi | Family::Dapi) || key.permissions.futures;
    let allowed = futures_ok
        && match need {
            Need::Read => key.permissions.reading,
            Need::Trade(market) => key.permissions.can_trade(market),
        };
    if !allowed {
        return Err(invalid_key(family, ip));
    }
    Ok(key.clone())
}
