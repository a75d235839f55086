//! `POST /fhir/R4`: FHIR R4 import of one patient's `transaction` or `batch` Bundle, with a
//! clinic API key (`Authorization: Bearer pk_…`). Answers a `transaction-response` or
//! `batch-response` Bundle, an OperationOutcome for every entry that fails, or — when the whole
//! bundle is refused — one OperationOutcome with every reason. Served at `/fhir/R4` on the
//! clinic's host (the FHIR base URL an EHR is given) and at `/api/fhir/R4`, as documented.

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::{ApiResponse, OpenApi};
use portal_domain::identity::api_keys;
use portal_domain::record::fhir::{self, ImportError, Issue, Kind, Outcome};
use serde_json::{Value, json};

use super::ApiTags;
use crate::auth::audit_ctx;
use crate::{AppState, internal};

/// A FHIR JSON body (`application/fhir+json`, or plain `application/json`), read as bytes so
/// that malformed JSON is answered as an OperationOutcome, like every other FHIR error.
pub struct FhirJson(pub Vec<u8>);

impl Payload for FhirJson {
    const CONTENT_TYPE: &'static str = "application/fhir+json";

    fn check_content_type(content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence == "application/fhir+json" || essence == "application/json"
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some("A FHIR R4 Bundle of type transaction or batch."),
            ..MetaSchema::new("object")
        }))
    }
}

impl ParsePayload for FhirJson {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut poem::RequestBody) -> poem::Result<Self> {
        use poem::FromRequest;
        Ok(Self(<Vec<u8>>::from_request(request, body).await?))
    }
}

poem_openapi::impl_apirequest_for_payload!(FhirJson,);

#[derive(ApiResponse)]
pub enum FhirResponse {
    /// The `transaction-response` or `batch-response` Bundle: per entry its status, where it
    /// landed (`Type/<id>/_history/<version>`), or an OperationOutcome.
    #[oai(status = 200, content_type = "application/fhir+json")]
    Ok(Json<Value>),
    /// Not JSON, or not a Bundle: an OperationOutcome.
    #[oai(status = 400, content_type = "application/fhir+json")]
    BadRequest(Json<Value>),
    /// No key, a revoked key, or another clinic's key. Nothing was written.
    #[oai(status = 401, content_type = "application/fhir+json")]
    Unauthorized(Json<Value>),
    /// More entries than one bundle may carry.
    #[oai(status = 413, content_type = "application/fhir+json")]
    TooLarge(Json<Value>),
    /// The bundle was refused as a whole (a transaction with any entry in error, two
    /// patients, no patient): an OperationOutcome with every reason. Nothing was written.
    #[oai(status = 422, content_type = "application/fhir+json")]
    Refused(Json<Value>),
}

fn outcome(issues: &[Issue]) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": issues.iter().map(|i| {
            let mut v = json!({"severity": "error", "code": i.code, "diagnostics": i.diagnostics});
            if let Some(e) = &i.expression {
                v["expression"] = json!([e]);
            }
            v
        }).collect::<Vec<_>>(),
    })
}

fn one(code: &'static str, words: &str) -> Json<Value> {
    Json(outcome(&[Issue::new(code, words)]))
}

fn status_line(code: u16) -> &'static str {
    match code {
        200 => "200 OK",
        201 => "201 Created",
        404 => "404 Not Found",
        _ => "422 Unprocessable Entity",
    }
}

fn response_bundle(o: &Outcome) -> Value {
    let entries: Vec<Value> = o
        .entries
        .iter()
        .map(|e| {
            let mut response = json!({ "status": status_line(e.status) });
            if let Some(l) = &e.location {
                response["location"] = json!(l);
            }
            if !e.issues.is_empty() {
                response["outcome"] = outcome(&e.issues);
            }
            json!({ "response": response })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": match o.kind {
            Kind::Transaction => "transaction-response",
            Kind::Batch => "batch-response",
        },
        "entry": entries,
    })
}

pub struct FhirApi;

#[OpenApi]
impl FhirApi {
    /// Import a patient's records (FHIR R4 transaction or batch Bundle).
    ///
    /// Authenticated with a clinic API key (`Authorization: Bearer pk_…`; clinic admins make
    /// them in the console, operators with `portal api-keys create`). Takes Patient,
    /// Practitioner, Organization, Encounter, Condition, AllergyIntolerance, MedicationRequest,
    /// MedicationStatement, Immunization, Observation (vital signs and labs),
    /// DiagnosticReport, Procedure, CarePlan and DocumentReference (inline text) for one
    /// patient. Importing the same bundle again changes nothing. Also served at `/fhir/R4`.
    #[oai(path = "/fhir/R4", method = "post", tag = "ApiTags::Records")]
    async fn import(
        &self,
        req: &Request,
        Data(state): Data<&AppState>,
        body: FhirJson,
    ) -> poem::Result<FhirResponse> {
        let Some(tenant) = crate::auth::clinic(req) else {
            return Ok(FhirResponse::Unauthorized(one(
                "login",
                "Send a clinic API key.",
            )));
        };
        let key = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        let now = state.clock.now();
        let mut tx = crate::tx::begin(req, &state.tenant_db, &tenant)
            .await
            .map_err(internal)?;
        let Some(scope) = api_keys::authenticate(&mut tx, key, now)
            .await
            .map_err(internal)?
        else {
            return Ok(FhirResponse::Unauthorized(one(
                "login",
                "This is not an API key of this clinic (or it was revoked).",
            )));
        };
        let bundle: Value = match serde_json::from_slice(&body.0) {
            Ok(v) => v,
            Err(e) => {
                return Ok(FhirResponse::BadRequest(one(
                    "structure",
                    &format!(
                        "The body is not JSON (line {}, column {}).",
                        e.line(),
                        e.column()
                    ),
                )));
            }
        };
        let ctx = audit_ctx(req, None);
        match fhir::import(&mut tx, &scope, &ctx, &bundle, now).await {
            Ok(o) => {
                tx.commit().await.map_err(internal)?;
                tracing::info!(
                    entries = o.entries.len(),
                    changed = o.changed(),
                    "fhir import"
                );
                Ok(FhirResponse::Ok(Json(response_bundle(&o))))
            }
            Err(ImportError::Refused(issues)) => {
                drop(tx);
                let body = Json(outcome(&issues));
                Ok(match issues.first().map(|i| i.code) {
                    Some("too-costly") => FhirResponse::TooLarge(body),
                    Some("structure") => FhirResponse::BadRequest(body),
                    _ => FhirResponse::Refused(body),
                })
            }
            Err(ImportError::Database(e)) => Err(internal(e)),
        }
    }
}
