//! The JSON API of API.md.

pub mod account;
pub mod health;
pub mod me;
pub mod openapi;
pub mod recovery;
pub mod second_factor;
pub mod sessions;
pub mod token;

use actix_web::{HttpRequest, error::JsonPayloadError};

use crate::error::ApiError;

/// actix's own extractor errors, in API.md's JSON shape instead of plain text.
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api_error = match &error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => ApiError::PayloadTooLarge,
        JsonPayloadError::ContentType => {
            ApiError::BadRequest("the body must be JSON (Content-Type: application/json)".into())
        }
        JsonPayloadError::Deserialize(cause) => {
            ApiError::BadRequest(format!("the body is not valid JSON for this request: {cause}"))
        }
        other => ApiError::BadRequest(format!("the body could not be read: {other}")),
    };
    api_error.into()
}

/// A required string field of a JSON body.
pub fn required(value: Option<String>, field: &'static str) -> Result<String, ApiError> {
    value.ok_or_else(|| ApiError::invalid_field(field, format!("{field} is required")))
}
