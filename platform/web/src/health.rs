use std::time::Duration;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use crate::AppState;

/// The process is up.
#[handler]
pub fn healthz() -> &'static str {
    "ok"
}

/// PostgreSQL and Redis both answer within a second.
#[handler]
pub async fn readyz(Data(state): Data<&AppState>) -> Response {
    let limit = Duration::from_secs(1);
    let db = tokio::time::timeout(
        limit,
        sqlx::query("SELECT 1").execute(state.tenant_db.pool()),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let redis = tokio::time::timeout(limit, async {
        let mut conn = state.redis.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    })
    .await
    .is_ok_and(|r| r.is_ok());
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let status = if db && redis {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Json(json!({ "database": word(db), "redis": word(redis) }))
        .with_status(status)
        .into_response()
}
