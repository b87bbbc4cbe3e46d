//! Unit tests for the error policy: which failures are a 503 and which stay a 500.

use super::*;

fn cut_connection() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset by peer",
    ))
}

#[test]
fn a_database_out_of_reach_is_a_503_whichever_road_its_error_took() {
    let direct: ApiError = cut_connection().into();
    assert!(matches!(direct, ApiError::Unavailable(_)), "{direct:?}");
    let through_anyhow: ApiError = anyhow::Error::new(cut_connection()).into();
    assert!(matches!(through_anyhow, ApiError::Unavailable(_)), "{through_anyhow:?}");
    let with_context: ApiError = anyhow::Error::new(cut_connection()).context("storing the link").into();
    assert!(matches!(with_context, ApiError::Unavailable(_)), "{with_context:?}");
}

#[test]
fn a_bug_stays_a_500_and_keeps_its_cause() {
    let decode: ApiError = anyhow::Error::new(sqlx::Error::RowNotFound).into();
    let ApiError::Internal(error) = decode else {
        panic!("a missing row is a bug in a query, not an outage");
    };
    assert!(matches!(
        error.downcast_ref::<sqlx::Error>(),
        Some(sqlx::Error::RowNotFound)
    ));
    let plain: ApiError = anyhow::anyhow!("a template failed").into();
    assert!(matches!(plain, ApiError::Internal(_)));
    assert_eq!(plain.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
}
