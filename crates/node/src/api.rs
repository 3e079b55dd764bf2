//! The HTTP API (`docs/PROTOCOL.md` §7): routes, body handling and per-route metrics.

use sigil_primitives::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use sigil_crypto::Envelope;
use sigil_primitives::request::{NodeInfo, PathSettings, SignatureStatus};
use sigil_primitives::{HashingAlgorithm, MAX_PROGRAMS_PER_KEY, RequestId};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::create_response_with_body;
use tokio_tungstenite::tungstenite::protocol::Role;
use tower_http::timeout::RequestBodyTimeoutLayer;

use sigil_primitives::throttle::{Full, Slot};

use crate::error::ApiError;
use crate::node::Inner;

/// Largest request body: an envelope around a 1 MiB message, hex-encoded in JSON.
const MAX_BODY: usize = 4 << 20;

type AppState = State<Arc<Inner>>;

/// The node's routes.
pub(crate) fn router(inner: Arc<Inner>) -> axum::Router {
    let router = axum::Router::new()
        .route("/v1/relay", post(relay))
        .route("/v1/sign", post(sign))
        .route("/v1/nonces", post(nonces))
        .route("/v1/ws", get(websocket))
        .route("/v1/signature/{request_id}", get(signature))
        .route("/v1/info", get(info))
        .route("/v1/hashes", get(hashes))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text));
    #[cfg(feature = "fault-injection")]
    let router = router.route("/v1/admin/fault", post(set_fault));
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(check_body))
        .layer(middleware::from_fn(observe))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(RequestBodyTimeoutLayer::new(
            inner.config.http.body_read_timeout,
        ))
        .with_state(inner)
}

/// Counts requests by route and status, and times them.
async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("sigil_node_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("sigil_node_http_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// An envelope from a JSON body, or the JSON error explaining why not.
fn envelope(body: Result<Bytes, BytesRejection>) -> Result<Envelope, ApiError> {
    let body = body.map_err(|rejection| {
        let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::PayloadTooLarge
        } else {
            ErrorCode::BadRequest
        };
        ApiError::new(code, rejection.body_text())
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedEnvelope,
            format!("not an envelope: {e}"),
        )
    })
}

async fn relay(State(inner): AppState, body: Result<Bytes, BytesRejection>) -> Response {
    let envelope = match envelope(body) {
        Ok(envelope) => envelope,
        Err(error) => return error.into_response(),
    };
    let (request_id, result) = inner.relay(envelope).await;
    let ttl = inner.config.result_ttl;
    match result {
        Ok(response) => {
            metrics::counter!("sigil_node_relayed_total", "outcome" => "ok").increment(1);
            inner.requests.results().done(response.clone(), ttl);
            Json(response).into_response()
        }
        Err(error) => {
            metrics::counter!("sigil_node_relayed_total", "outcome" => error.code.as_str())
                .increment(1);
            tracing::info!(code = %error.code, message = %error.message, "relay refused");
            if let Some(id) = request_id {
                inner.requests.results().failed(id, error.detail(), ttl);
            }
            error.into_response()
        }
    }
}

async fn sign(State(inner): AppState, body: Result<Bytes, BytesRejection>) -> Response {
    let result = match envelope(body) {
        Ok(envelope) => inner.sign(envelope).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(response) => Json(response).into_response(),
        Err(error) => {
            tracing::info!(code = %error.code, message = %error.message, "sign refused");
            error.into_response()
        }
    }
}

async fn nonces(State(inner): AppState, body: Result<Bytes, BytesRejection>) -> Response {
    let result = match envelope(body) {
        Ok(envelope) => inner.nonces_for(envelope),
        Err(error) => Err(error),
    };
    match result {
        Ok(batch) => Json(batch).into_response(),
        Err(error) => {
            tracing::info!(code = %error.code, message = %error.message, "nonces refused");
            error.into_response()
        }
    }
}

/// Upgrades to a websocket and hands it to the transport, which runs the Noise handshake and
/// refuses peers that are not validators.
async fn websocket(State(inner): AppState, mut request: Request) -> Response {
    // tungstenite checks the upgrade (GET, HTTP/1.1, headers, version 13) and makes the 101;
    // a key is the base64 of 16 bytes, 24 characters.
    let key_ok = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .is_some_and(|key| key.len() == 24);
    let switching = match create_response_with_body(&request, || ()) {
        Ok(response) if key_ok => response,
        _ => {
            let message = "expected a websocket upgrade (version 13, a 16-byte key)";
            return ApiError::new(ErrorCode::NotAWebsocket, message).into_response();
        }
    };
    let slot = match handshake_slot(&inner, &request) {
        Ok(slot) => slot,
        Err(refusal) => return refusal.into_response(),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let transport = inner.transport.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(sigil_transport::websocket_config()),
                )
                .await;
                if let Err(error) = transport.accept_holding(ws, slot).await {
                    tracing::debug!(%error, "inbound validator connection ended");
                }
            }
            Err(error) => tracing::debug!(%error, "websocket upgrade failed"),
        }
    });
    let (parts, ()) = switching.into_parts();
    Response::from_parts(parts, axum::body::Body::empty())
}

/// A slot of the cap on handshakes in flight for the request's peer: each upgrade holds
/// buffers until its Noise handshake ends.
fn handshake_slot(inner: &Inner, request: &Request) -> Result<Option<Slot>, ApiError> {
    let Some(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return Ok(None);
    };
    match inner.handshakes.take(peer.0.ip()) {
        Ok(slot) => Ok(Some(slot)),
        Err(full) => {
            metrics::counter!("sigil_node_ws_handshakes_refused_total").increment(1);
            let why = match full {
                Full::Total => "too many validator handshakes in progress",
                Full::Address => "too many validator handshakes from this address",
            };
            Err(ApiError::new(
                ErrorCode::Busy,
                format!("{why}; retry later"),
            ))
        }
    }
}

/// Refuses, before reading a byte of it, a body over the cap (as `Content-Length` announces
/// it, so `Expect: 100-continue` gets the 413, not a `100 Continue`) or not JSON.
async fn check_body(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_BODY as u64) {
        let message = format!("the body is over the {MAX_BODY}-byte limit");
        return ApiError::new(ErrorCode::PayloadTooLarge, message).into_response();
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if request.method() == Method::POST && !json {
        let message = "the body must be JSON (Content-Type: application/json)";
        return ApiError::new(ErrorCode::UnsupportedMediaType, message).into_response();
    }
    next.run(request).await
}

async fn signature(
    State(inner): AppState,
    Path(request_id): Path<String>,
) -> Result<Json<SignatureStatus>, ApiError> {
    let id: RequestId = request_id
        .parse()
        .map_err(|e| ApiError::new(ErrorCode::BadRequestId, format!("{e}")))?;
    inner
        .requests
        .results()
        .get(&id, inner.config.result_ttl)
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownRequest,
                format!("no result kept for request {id}"),
            )
        })
}

async fn info(State(inner): AppState) -> Json<NodeInfo> {
    let view = inner.view();
    let me = inner.me();
    Json(NodeInfo {
        account: me,
        x25519: inner.keys.x25519.public_key(),
        endpoint: inner.config.endpoint.as_str().to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ready: inner.ready(&view),
        validator: view.is_validator(&me),
        signer: view.is_signer(&me),
        head: view.head,
        network_key: view.signer_set.network_key,
        security_parameters: sigil_mpc::SECURITY_PARAMETERS.to_owned(),
        path: PathSettings {
            connections: if inner.config.persistent_connections {
                "persistent"
            } else {
                "per-session"
            }
            .to_owned(),
            program_fuel: inner.config.fuel_policy.as_str().to_owned(),
            program_cache: inner.config.program_cache,
        },
    })
}

async fn hashes() -> Json<serde_json::Value> {
    let built_in: Vec<String> = HashingAlgorithm::BUILT_IN
        .iter()
        .map(ToString::to_string)
        .collect();
    let custom: Vec<String> = (0..MAX_PROGRAMS_PER_KEY)
        .map(|i| format!("custom:{i}"))
        .collect();
    Json(serde_json::json!({ "built_in": built_in, "custom": custom }))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn metrics_text(State(inner): AppState) -> Response {
    match &inner.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => ApiError::new(
            ErrorCode::MetricsUnavailable,
            "another metrics recorder is installed in this process",
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("this route does not answer {method}"),
    )
}

/// `POST /v1/admin/fault` (fault-injection builds only): `{"fault": "silent"}` and the like, or
/// `{"fault": null}` to behave again. Applies to signing sessions started afterwards.
#[cfg(feature = "fault-injection")]
async fn set_fault(
    State(inner): AppState,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(ErrorCode::BadJson, e.body_text()))?;
    let fault = match body.get("fault") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) => Some(
            text.parse::<sigil_mpc::InjectedFault>()
                .map_err(|e| ApiError::new(ErrorCode::BadFault, e.to_string()))?,
        ),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::BadFault,
                "\"fault\" must be a string or null",
            ));
        }
    };
    tracing::warn!(?fault, "fault injection changed");
    *inner.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault.clone();
    Ok(Json(serde_json::json!({ "fault": fault })))
}
