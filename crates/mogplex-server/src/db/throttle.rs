//! Throttle counters that hold under concurrency and across processes: an attempt takes a slot
//! in one conditional upsert before it is checked, so N concurrent attempts can never all pass
//! a check that reads the count first; a success gives its slot back.

use super::{Cols, Db, DbError};

/// The statements of [`Db::throttle_take`] on one counter table: an attempt takes a slot if the
/// window has room (or has ended), and when it has not, the window's start.
macro_rules! take_sql {
    ($table:literal) => {
        (
            concat!(
                "INSERT INTO ",
                $table,
                " (key, window_start, count) VALUES ($1, $2, 1) ",
                "ON CONFLICT (key) DO UPDATE SET ",
                "count = CASE WHEN ",
                $table,
                ".window_start <= $3 THEN 1 ELSE ",
                $table,
                ".count + 1 END, ",
                "window_start = CASE WHEN ",
                $table,
                ".window_start <= $3 THEN $2 ELSE ",
                $table,
                ".window_start END ",
                "WHERE ",
                $table,
                ".window_start <= $3 OR ",
                $table,
                ".count < $4 ",
                "RETURNING count"
            ),
            concat!(
                "SELECT window_start FROM ",
                $table,
                " WHERE key = $1 AND window_start > $2"
            ),
        )
    };
}
use crate::crypto::now;

impl Db {
    /// Takes one of the `max` attempts `key` may make in a fixed window of `window` seconds, in
    /// one statement: `Ok(Ok(n))` with the attempts now counted, or `Ok(Err(until))` (when the
    /// window ends) if all are taken.
    pub async fn throttle_take(
        &self,
        key: &str,
        window: i64,
        max: i64,
    ) -> Result<Result<i64, i64>, DbError> {
        self.take(take_sql!("throttle"), key, window, max).await
    }

    /// [`Db::throttle_take`] for the gateway's per-token request counts on PostgreSQL, kept in
    /// the UNLOGGED table `rate_counters` (migration 15): a transaction that writes only there
    /// writes no WAL, so its commit does not wait for a flush while the next request on the same
    /// token waits for its row lock. A PostgreSQL crash empties the table, which restarts the
    /// current minute's counts: harmless for a rate limit, not for a password throttle, which
    /// stays in `throttle`.
    pub async fn rate_take(
        &self,
        key: &str,
        window: i64,
        max: i64,
    ) -> Result<Result<i64, i64>, DbError> {
        self.take(take_sql!("rate_counters"), key, window, max)
            .await
    }

    /// `sql`: the conditional upsert and the window's start, of one table ([`take_sql!`]).
    async fn take(
        &self,
        sql: (&'static str, &'static str),
        key: &str,
        window: i64,
        max: i64,
    ) -> Result<Result<i64, i64>, DbError> {
        let t = now();
        let serialised = self.write_guard().await;
        let taken = fetch_optional!(self, sql.0, [key, t, t - window, max], |r| r.int(0));
        drop(serialised);
        if let Some(n) = taken {
            return Ok(Ok(n));
        }
        let start = fetch_optional!(self, sql.1, [key, t - window], |r| r.int(0));
        Ok(Err(start.map_or(t, |s| s + window)))
    }

    /// Gives back a slot taken by [`Db::throttle_take`] (the attempt succeeded).
    pub async fn throttle_refund(&self, key: &str) -> Result<(), DbError> {
        let q = "UPDATE throttle SET count = count - 1 WHERE key = $1 AND count > 0";
        let _serialised = self.write_guard().await;
        execute!(self, q, key)?;
        Ok(())
    }
}
