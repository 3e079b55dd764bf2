//! Checks of a JSON-RPC body over HTTP that jsonrpsee leaves loose, made before it sees the
//! body: an id must be a number, a string or null (jsonrpsee answers an object id with an
//! empty `null`); subscriptions need a websocket (over HTTP jsonrpsee answers -32603); and a
//! call may not carry more positional parameters than its method takes (jsonrpsee ignores
//! them).

use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use jsonrpsee::server::http::response;
use jsonrpsee::server::{HttpBody, HttpResponse};
use serde_json::{Value, json};
use sigil_ledger_api::rpc::{
    CODE_NEEDS_WEBSOCKET, MAX_REQUEST_BYTES, METHOD_PARAMS, SUBSCRIPTION_METHODS,
};
use tower::{BoxError, Service, ServiceExt as _};

/// JSON-RPC's code for a request that is not a valid request object.
const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC's code for invalid method parameters.
const INVALID_PARAMS: i32 = -32602;

/// Passes `request` to `service`, unless it is a POST whose JSON-RPC calls break a rule above:
/// then answers the error itself.
pub(crate) async fn call<S>(
    mut service: S,
    request: Request<Incoming>,
) -> Result<HttpResponse, BoxError>
where
    S: Service<Request<HttpBody>, Response = HttpResponse, Error = BoxError>,
{
    if request.method() != Method::POST {
        let request = request.map(HttpBody::new);
        return service.ready().await?.call(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match Limited::new(body, MAX_REQUEST_BYTES as usize)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        // Over the limit (or cut short): jsonrpsee's own answer to an oversized request.
        Err(_) => return Ok(response::too_large(MAX_REQUEST_BYTES)),
    };
    if let Some(refusal) = vet(&bytes) {
        let response = Response::builder()
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(HttpBody::from(refusal.to_string()))?;
        return Ok(response);
    }
    let request = Request::from_parts(parts, HttpBody::from(bytes.to_vec()));
    service.ready().await?.call(request).await
}

/// The error answer to send instead of serving `body`, if it breaks a rule; `None` lets
/// jsonrpsee serve it (including bodies that are not JSON, which it answers itself).
pub(crate) fn vet(body: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let calls: Vec<&Value> = match &value {
        Value::Array(calls) => calls.iter().collect(),
        call => vec![call],
    };
    calls.into_iter().find_map(vet_call)
}

fn vet_call(call: &Value) -> Option<Value> {
    let id = call.get("id");
    if let Some(id) = id
        && !(id.is_null() || id.is_number() || id.is_string())
    {
        let message = "Invalid request: an id is a number, a string or null";
        return Some(error(None, INVALID_REQUEST, message.into()));
    }
    let method = call.get("method")?.as_str()?;
    if SUBSCRIPTION_METHODS.contains(&method) {
        let message = format!("{method} needs a websocket connection (ws://)");
        return Some(error(id, CODE_NEEDS_WEBSOCKET, message));
    }
    let given = call.get("params").and_then(Value::as_array).map(Vec::len)?;
    let (_, most) = METHOD_PARAMS.iter().find(|(name, _)| *name == method)?;
    (given > *most).then(|| {
        let message = format!("Invalid params: {method} takes at most {most}, got {given}");
        error(id, INVALID_PARAMS, message)
    })
}

fn error(id: Option<&Value>, code: i32, message: String) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": {"code": code, "message": message},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> Option<i64> {
        vet(body.as_bytes()).map(|answer| answer["error"]["code"].as_i64().unwrap())
    }

    #[test]
    fn ids_subscriptions_and_extra_parameters_are_refused_and_the_rest_passes() {
        let call = |id: &str, method: &str, params: &str| {
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
        };
        assert_eq!(code(&call(r#"{"a":1}"#, "ledger_head", "[]")), Some(-32600));
        assert_eq!(code(&call("[1]", "ledger_head", "[]")), Some(-32600));
        assert_eq!(code(&call("1", "ledger_subscribeHeads", "[]")), Some(1005));
        assert_eq!(code(&call("1", "ledger_block", "[1, 2]")), Some(-32602));
        for fine in [
            call("1", "ledger_block", "[1]"),
            call(r#""x""#, "ledger_head", "[]"),
            call("null", "ledger_registrations", "[]"),
            call("1", "ledger_block", r#"{"height": 1}"#),
            call("1", "ledger_unknown", "[1, 2, 3]"),
            "not json".to_string(),
        ] {
            assert_eq!(code(&fine), None, "{fine}");
        }
        // A batch is refused for its first bad call.
        let batch = format!(
            "[{}, {}]",
            call("1", "ledger_head", "[]"),
            call("2", "ledger_head", "[7]")
        );
        assert_eq!(code(&batch), Some(-32602));
    }
}
