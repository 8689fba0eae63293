//! Throttle counters that hold under concurrency and across processes: an attempt takes a slot
//! in one conditional upsert before it is checked, so N concurrent attempts can never all pass
//! a check that reads the count first; a success gives its slot back.

use super::{Cols, Db, DbError};
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
        let t = now();
        let q = "INSERT INTO throttle (key, window_start, count) VALUES ($1, $2, 1) \
                 ON CONFLICT (key) DO UPDATE SET \
                   count = CASE WHEN throttle.window_start <= $3 THEN 1 ELSE throttle.count + 1 END, \
                   window_start = CASE WHEN throttle.window_start <= $3 THEN $2 ELSE throttle.window_start END \
                 WHERE throttle.window_start <= $3 OR throttle.count < $4 \
                 RETURNING count";
        let serialised = self.write_guard().await;
        let taken = fetch_optional!(self, q, [key, t, t - window, max], |r| r.int(0));
        drop(serialised);
        match taken {
            Some(n) => Ok(Ok(n)),
            None => Ok(Err(self.throttle_count(key, window).await?.1)),
        }
    }

    /// Gives back a slot taken by [`Db::throttle_take`] (the attempt succeeded).
    pub async fn throttle_refund(&self, key: &str) -> Result<(), DbError> {
        let q = "UPDATE throttle SET count = count - 1 WHERE key = $1 AND count > 0";
        let _serialised = self.write_guard().await;
        execute!(self, q, key)?;
        Ok(())
    }
}
