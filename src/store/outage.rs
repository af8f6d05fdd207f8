//! Telling a database that cannot be reached from one that refused a
//! statement. The first kind passes (the service retries, spools history
//! and serves cached lookups meanwhile); the second is a fault to report.

use sqlx::postgres::PgDatabaseError;

/// Whether `error` means the database could not be reached or cannot work
/// for now, rather than that it refused what was asked.
pub fn is_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.try_downcast_ref::<PgDatabaseError>() {
            Some(postgres) => is_postgres_outage(postgres.code()),
            None => db.code().is_some_and(|code| is_sqlite_outage(&code)),
        },
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs of class 08 (connection exception), class 53
/// (insufficient resources: disk full, out of memory, too many
/// connections) and 57P01..57P03 (shutting down, cannot connect now).
fn is_postgres_outage(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
}

/// SQLite result codes as text, extended ones included.
fn is_sqlite_outage(code: &str) -> bool {
    code.parse::<i32>().is_ok_and(is_sqlite_outage_code)
}

/// SQLite result codes, extended ones included (the primary code is the
/// low byte): 5 busy, 6 locked, 8 read-only (a file made read-only while
/// the service runs), 10 I/O error, 13 full, 14 cannot open.
pub fn is_sqlite_outage_code(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_and_disk_codes_are_outages_and_constraints_are_not() {
        assert!(is_postgres_outage("08006"));
        assert!(is_postgres_outage("57P01"));
        assert!(is_postgres_outage("53100"));
        assert!(!is_postgres_outage("23505"));
        assert!(!is_postgres_outage("57014"));
        assert!(is_sqlite_outage("13"));
        assert!(is_sqlite_outage("266"));
        assert!(is_sqlite_outage("8"));
        assert!(!is_sqlite_outage("2067"));
        assert!(!is_sqlite_outage("19"));
    }

    #[test]
    fn a_refused_connection_is_an_outage() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);

        assert!(is_outage(&sqlx::Error::Io(refused)));
        assert!(is_outage(&sqlx::Error::PoolTimedOut));
        assert!(!is_outage(&sqlx::Error::RowNotFound));
    }
}
