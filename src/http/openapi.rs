//! The OpenAPI 3.1 document of the JSON API. Paths come from the handlers'
//! `#[utoipa::path]` annotations as the router registers them (see
//! `http::openapi`), so a route cannot be served without being listed;
//! this module adds what applies to every operation: the error shapes, the
//! signature scheme (on the routes the signature check guards) and the
//! API's description. The document is served
//! unsigned at `/api/v1/openapi.json`: it describes the API, not an account.

use std::sync::LazyLock;

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{OpenApi as _, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::error::ErrorBody;
use super::AppState;
use crate::signing::{ACCESS_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// The fixed part of the document; [`document`] adds the paths.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "multidrm",
        description = "Self-hostable multi-DRM license service answering NAVER Cloud One Click Multi DRM's REST API. Every signed request carries the three x-ncp-* headers: x-ncp-apigw-signature-v2 is base64(HMAC-SHA256(secretKey, METHOD + \" \" + pathAndQuery + \"\\n\" + timestamp + \"\\n\" + accessKey)), where pathAndQuery is the request target exactly as sent and timestamp is epoch milliseconds within 5 minutes of the server clock. Refusals before the handler (signature, unknown route, body too large, rate limit) use the gateway error shape; every other failure uses the service error shape. Extensions beyond NCP: ClearKey, content keys, CPIX key exchange, history export, history cursors (`cursor` in, `nextCursor` out), upstream license servers, accessKey in change logs.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "sites", description = "Sites (spec section 4)"),
        (name = "policies", description = "Policies (spec section 5)"),
        (name = "license", description = "License issuance (spec section 6)"),
        (name = "history", description = "License history (spec section 7)"),
        (name = "content keys", description = "Content keys and CPIX key exchange [extension]"),
        (name = "service", description = "Health and this document")
    )
)]
pub struct ApiDoc;

/// `pageNo`, `pageSize` and its older name `pageSizeNo` (spec section 1).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct PageParams {
    /// 1-based page, default 1.
    #[param(minimum = 1)]
    pub page_no: Option<i64>,
    /// 1..100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<i64>,
    /// Older NCP name of pageSize.
    #[param(minimum = 1, maximum = 100)]
    pub page_size_no: Option<i64>,
}

/// `startTime` and `endTime` of the logs, epoch ms, both inclusive, at
/// most `domain::history::MAX_EPOCH_MS` (the end of year 9999).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct TimeParams {
    /// Earliest entry, epoch ms, inclusive.
    #[param(minimum = 0, maximum = 253_402_300_799_999.0)]
    pub start_time: Option<i64>,
    /// Latest entry, epoch ms, inclusive.
    #[param(minimum = 0, maximum = 253_402_300_799_999.0)]
    pub end_time: Option<i64>,
}

/// The filters of the license history (spec section 7).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct HistoryParams {
    /// The site.
    #[param(min_length = 1)]
    pub site_id: String,
    /// contentId, drmType, userId, deviceId or deviceModel; needs searchKeyword.
    pub search_condition: Option<String>,
    /// Exact value of searchCondition.
    pub search_keyword: Option<String>,
    /// success or fail, any case.
    pub status: Option<String>,
    /// Earliest record, epoch ms, inclusive.
    #[param(minimum = 0, maximum = 253_402_300_799_999.0)]
    pub start_time: Option<i64>,
    /// Latest record, epoch ms, inclusive.
    #[param(minimum = 0, maximum = 253_402_300_799_999.0)]
    pub end_time: Option<i64>,
    /// [extension] Only this DRM type (Widevine, PlayReady, FairPlay or
    /// ClearKey, any case), on top of any search condition.
    pub drm_type: Option<String>,
    /// [extension] Only this platform, e.g. PLATFORM_LINUX.
    pub platform: Option<String>,
}

/// Name of the signature scheme's parts in `components.securitySchemes`.
const SCHEMES: [(&str, &str, &str); 3] = [
    (
        "ncpTimestamp",
        TIMESTAMP_HEADER,
        "Client clock, epoch milliseconds, within 5 minutes of the server's.",
    ),
    (
        "ncpAccessKey",
        ACCESS_KEY_HEADER,
        "Access key id (`multidrm keys create`).",
    ),
    (
        "ncpSignature",
        SIGNATURE_HEADER,
        "NCP API Gateway signature v2 of METHOD, path and query as sent, timestamp and access key.",
    ),
];

/// Adds the signature's headers to `components.securitySchemes`.
fn add_signature_schemes(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    for (name, header, description) in SCHEMES {
        components.add_security_scheme(
            name,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                header,
                description,
            ))),
        );
    }
}

/// All three signature headers, required together.
fn signature_requirement() -> SecurityRequirement {
    SCHEMES.iter().fold(
        SecurityRequirement::default(),
        |requirement, (name, _, _)| requirement.add::<&str, [&str; 0], &str>(name, []),
    )
}

/// Applies `change` to every operation of `openapi`.
fn for_each_operation(openapi: &mut OpenApi, mut change: impl FnMut(&mut Operation)) {
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            change(operation);
        }
    }
}

/// Any operation can be refused: 4XX for the client's mistakes, 5XX when
/// the service is overloaded, its database is down, or something broke.
fn add_failures(operation: &mut Operation) {
    let body = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build()
    };
    for (status, description) in [
        (
            "4XX",
            "Refused: the service error shape, or the gateway shape for signature, route, size and rate-limit refusals",
        ),
        (
            "5XX",
            "Failed: overloaded or database unavailable (with Retry-After), upstream failure, or an unexpected error",
        ),
    ] {
        let response = ResponseBuilder::new()
            .description(description)
            .content("application/json", body())
            .build();
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert(response.into());
    }
}

/// The document: the fixed part, the paths of both routers with the
/// signature required on those of `signed`, and the refusals any
/// operation can answer.
pub fn document(signed: OpenApiRouter<AppState>, unsigned: OpenApiRouter<AppState>) -> OpenApi {
    let mut signed = signed.into_openapi();
    let requirement = signature_requirement();
    for_each_operation(&mut signed, |operation| {
        operation.security = Some(vec![requirement.clone()]);
    });
    let mut document = ApiDoc::openapi()
        .merge_from(signed)
        .merge_from(unsigned.into_openapi());
    add_signature_schemes(&mut document);
    for_each_operation(&mut document, add_failures);
    document
}

/// `GET /api/v1/openapi.json`: this document, built once.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn openapi_document() -> Json<&'static OpenApi> {
    static DOCUMENT: LazyLock<OpenApi> = LazyLock::new(super::openapi);
    Json(&DOCUMENT)
}
