//! `POST /v1/billing/statements`: the clinic's billing system sends a whole statement with a
//! clinic API key (`Authorization: Bearer pk_…`), and it is issued to the patient as if
//! billing staff had (`billing::imports`). Sending the same statement again answers 200 with
//! the one already made; the same `external_id` with other content is 409.

use chrono::NaiveDate;
use poem::Request;
use poem::web::Data;
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use poem_openapi::{ApiResponse, Object, OpenApi};
use portal_domain::billing::imports::{self, Identifier, ImportError, Imported, StatementImport};
use portal_domain::billing::lines::LineInput;
use portal_domain::identity::api_keys;
use portal_domain::scheduling::clinic_tz;

use super::ApiTags;
use super::bills::MoneyOut;
use super::error::ErrorBody;
use crate::auth::audit_ctx;
use crate::{AppState, internal};

/// The patient, by an identifier their record was imported with.
#[derive(Debug, Object)]
pub struct PatientIdentifierIn {
    /// The identifier's system, as in FHIR (`urn:oid:…`, `http://hospital.example/mrn`).
    pub system: String,
    pub value: String,
}

/// One service, with amounts as decimal strings in the statement's currency ("180.00").
#[derive(Debug, Object)]
pub struct ImportLineIn {
    /// `YYYY-MM-DD`, not in the future.
    pub service_date: String,
    pub description: String,
    /// CPT or HCPCS Level II.
    pub code: Option<String>,
    pub charge: String,
    pub insurance_paid: Option<String>,
    pub adjustment: Option<String>,
}

/// A statement from the clinic's billing system.
#[derive(Debug, Object)]
pub struct StatementImportIn {
    /// The statement's id in your system: sending it again returns the same statement.
    pub external_id: String,
    pub patient: PatientIdentifierIn,
    /// ISO 4217: the clinic's billing currency.
    pub currency: String,
    /// `YYYY-MM-DD`, today or later.
    pub due_on: String,
    /// 1 to 100 services.
    pub lines: Vec<ImportLineIn>,
}

/// The issued statement.
#[derive(Debug, Object)]
pub struct StatementImportedOut {
    pub id: String,
    /// The number patients read ("Statement 1042").
    pub number: i64,
    pub external_id: String,
    /// What the patient was charged (the lines' patient parts).
    pub issued: MoneyOut,
    pub due_on: NaiveDate,
}

/// One problem with a sent statement.
#[derive(Debug, Object)]
pub struct ProblemOut {
    /// Where: `due_on`, `lines[2].charge`, …
    pub field: String,
    pub message: String,
}

/// A statement refused for what it contains.
#[derive(Debug, Object)]
pub struct ProblemsOut {
    pub code: String,
    pub message: String,
    pub problems: Vec<ProblemOut>,
}

/// The statement's JSON, read as bytes and parsed only once the key is checked: a caller
/// without a key of this clinic learns nothing, not even what the body should hold. The spec
/// still shows the statement's schema.
pub struct StatementBody(Vec<u8>);

impl Payload for StatementBody {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        content_type
            .split(';')
            .next()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
    }

    fn schema_ref() -> MetaSchemaRef {
        <StatementImportIn as Type>::schema_ref()
    }

    fn register(registry: &mut Registry) {
        <StatementImportIn as Type>::register(registry);
    }
}

impl ParsePayload for StatementBody {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut poem::RequestBody) -> poem::Result<Self> {
        use poem::FromRequest;
        Ok(Self(<Vec<u8>>::from_request(request, body).await?))
    }
}

poem_openapi::impl_apirequest_for_payload!(StatementBody,);

#[derive(ApiResponse)]
pub enum ImportResponse {
    /// Made and issued; the patient is told a statement is ready (with no amount).
    #[oai(status = 201)]
    Created(Json<StatementImportedOut>),
    /// Sent before with the same content: the statement already made.
    #[oai(status = 200)]
    Existing(Json<StatementImportedOut>),
    /// Not JSON, or not of the statement's shape (a key of this clinic was sent).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No key, a revoked key, or another clinic's key. Nothing was written.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The `external_id` was used before for a statement with other content.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// Something in the statement is wrong (every problem is listed), or no patient carries
    /// the identifier. Nothing was written.
    #[oai(status = 422)]
    Invalid(Json<ProblemsOut>),
}

fn out(i: &Imported, external_id: &str) -> Json<StatementImportedOut> {
    Json(StatementImportedOut {
        id: i.id.to_string(),
        number: i.number,
        external_id: external_id.trim().to_owned(),
        issued: MoneyOut {
            minor: i.issued.minor,
            currency: i.issued.currency.to_string(),
            display: i.issued.to_string(),
        },
        due_on: i.due_on,
    })
}

fn into_domain(b: StatementImportIn) -> StatementImport {
    StatementImport {
        external_id: b.external_id,
        patient: Identifier {
            system: b.patient.system,
            value: b.patient.value,
        },
        currency: b.currency,
        due_on: b.due_on,
        lines: b
            .lines
            .into_iter()
            .map(|l| LineInput {
                service_date: l.service_date,
                description: l.description,
                code: l.code.unwrap_or_default(),
                charge: l.charge,
                insurance_paid: l.insurance_paid.unwrap_or_default(),
                adjustment: l.adjustment.unwrap_or_default(),
            })
            .collect(),
    }
}

pub struct StatementImportApi;

#[OpenApi]
impl StatementImportApi {
    /// Send a statement from the clinic's billing system (issued at once).
    ///
    /// Authenticated with a clinic API key (`Authorization: Bearer pk_…`). The patient is
    /// found by an identifier imported with their record (such as the MRN); the statement is
    /// issued as billing staff would issue it, and the patient is told a statement is ready
    /// (the message has no amount and no service). Send the same statement again and the
    /// answer is the statement already made (200), never a second one.
    #[oai(
        path = "/v1/billing/statements",
        method = "post",
        tag = "ApiTags::Bills"
    )]
    async fn import(
        &self,
        req: &Request,
        Data(state): Data<&AppState>,
        body: StatementBody,
    ) -> poem::Result<ImportResponse> {
        let unauthorized = || {
            ImportResponse::Unauthorized(ErrorBody::new(
                "unauthorized",
                "Send a clinic API key of this clinic (Authorization: Bearer pk_…).",
            ))
        };
        let Some(tenant) = crate::auth::clinic(req) else {
            return Ok(unauthorized());
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
            return Ok(unauthorized());
        };
        let parsed = serde_json::from_slice::<serde_json::Value>(&body.0)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                StatementImportIn::parse_from_json(Some(v)).map_err(|e| e.into_message())
            });
        let input = match parsed {
            Ok(b) => into_domain(b),
            Err(why) => {
                return Ok(ImportResponse::BadRequest(ErrorBody::new(
                    "invalid_body",
                    format!("The body is not a statement: {why}"),
                )));
            }
        };
        let today = now.with_timezone(&clinic_tz(&tenant)).date_naive();
        let ctx = audit_ctx(req, None);
        match imports::import(&mut tx, &scope, &ctx, &input, today, now).await {
            Ok(made) => {
                tx.commit().await.map_err(internal)?;
                let body = out(&made, &input.external_id);
                Ok(if made.created {
                    tracing::info!(statement = %made.id, "statement imported");
                    ImportResponse::Created(body)
                } else {
                    ImportResponse::Existing(body)
                })
            }
            Err(ImportError::Invalid(problems)) => Ok(ImportResponse::Invalid(Json(ProblemsOut {
                code: "invalid_statement".to_owned(),
                message: "The statement was not accepted; nothing was written.".to_owned(),
                problems: problems
                    .into_iter()
                    .map(|(field, message)| ProblemOut { field, message })
                    .collect(),
            }))),
            Err(ImportError::UnknownPatient) => Ok(ImportResponse::Invalid(Json(ProblemsOut {
                code: "unknown_patient".to_owned(),
                message: "No patient of this clinic has that identifier; nothing was written."
                    .to_owned(),
                problems: vec![ProblemOut {
                    field: "patient".to_owned(),
                    message: "Import the patient's record first (POST /fhir/R4), or check the identifier's system and value.".to_owned(),
                }],
            }))),
            Err(ImportError::Conflict { existing }) => Ok(ImportResponse::Conflict(ErrorBody::new(
                "external_id_reused",
                format!(
                    "This external_id was already used for statement {existing}, with other content. Send changes as a new statement with a new id."
                ),
            ))),
            Err(ImportError::Billing(e)) => Err(internal(e)),
        }
    }
}
