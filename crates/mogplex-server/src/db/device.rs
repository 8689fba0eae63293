//! Device grants (RFC 8628): codes stored as hashes, approved or denied once from a signed-in
//! browser, polled by the device no faster than its interval.

use super::{Cols, Db, DbError};
use crate::crypto::{self, now};

#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub client_id: String,
    pub scope: String,
    pub expires_at: i64,
    pub interval_secs: i64,
    pub last_polled_at: Option<i64>,
    pub status: String,
    pub user_id: Option<String>,
    /// The RFC 8707 resource the device authorization request named, if any.
    pub resource: Option<String>,
}

impl DeviceRow {
    /// Columns 0..8: client_id, scope, expires_at, interval_secs, last_polled_at, status, user_id,
    /// resource.
    fn from_row(r: &impl Cols) -> Self {
        DeviceRow {
            client_id: r.text(0),
            scope: r.text(1),
            expires_at: r.int(2),
            interval_secs: r.int(3),
            last_polled_at: r.int_opt(4),
            status: r.text(5),
            user_id: r.text_opt(6),
            resource: r.text_opt(7),
        }
    }
}

impl Db {
    /// A new pending device grant. `grant`: the client, the scope and the resource (if any).
    pub async fn create_device_code(
        &self,
        device_code: &str,
        user_code: &str,
        grant: (&str, &str, Option<&str>),
        expires_at: i64,
        interval: i64,
    ) -> Result<(), DbError> {
        let (client_id, scope, resource) = grant;
        let q = "INSERT INTO device_codes (device_code_hash, user_code_hash, client_id, scope, expires_at, interval_secs, status, resource) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)";
        execute!(
            self,
            q,
            crypto::hash(device_code),
            crypto::hash(user_code),
            client_id,
            scope,
            expires_at,
            interval,
            resource
        )?;
        Ok(())
    }

    pub async fn device_by_user_code(&self, user_code: &str) -> Result<Option<DeviceRow>, DbError> {
        let q = "SELECT client_id, scope, expires_at, interval_secs, last_polled_at, status, user_id, resource FROM device_codes WHERE user_code_hash = $1";
        Ok(fetch_optional!(
            self,
            q,
            [crypto::hash(user_code)],
            DeviceRow::from_row
        ))
    }

    /// Approves or denies a pending, unexpired code. Returns whether it changed.
    pub async fn decide_device(
        &self,
        user_code: &str,
        user_id: &str,
        approve: bool,
    ) -> Result<bool, DbError> {
        let q = "UPDATE device_codes SET status = $1, user_id = $2 WHERE user_code_hash = $3 AND status = 'pending' AND expires_at > $4";
        let status = if approve { "approved" } else { "denied" };
        let n = execute!(self, q, status, user_id, crypto::hash(user_code), now())?;
        Ok(n == 1)
    }

    /// Records a poll and returns the row as it was before it (so the caller can apply
    /// `slow_down`). A poll that comes too early also widens the interval by 5 seconds.
    pub async fn poll_device(&self, device_code: &str) -> Result<Option<DeviceRow>, DbError> {
        let h = crypto::hash(device_code);
        let q = "SELECT client_id, scope, expires_at, interval_secs, last_polled_at, status, user_id, resource FROM device_codes WHERE device_code_hash = $1";
        let Some(row) = fetch_optional!(self, q, [&h], DeviceRow::from_row) else {
            return Ok(None);
        };
        let t = now();
        let too_fast = row
            .last_polled_at
            .is_some_and(|last| t - last < row.interval_secs);
        let q = if too_fast {
            "UPDATE device_codes SET last_polled_at = $1, interval_secs = interval_secs + 5 WHERE device_code_hash = $2"
        } else {
            "UPDATE device_codes SET last_polled_at = $1 WHERE device_code_hash = $2"
        };
        execute!(self, q, t, &h)?;
        Ok(Some(row))
    }

    /// Moves an approved code to redeemed, once.
    pub async fn redeem_device(&self, device_code: &str, family_id: &str) -> Result<bool, DbError> {
        let q = "UPDATE device_codes SET status = 'redeemed', family_id = $1 WHERE device_code_hash = $2 AND status = 'approved'";
        let n = execute!(self, q, family_id, crypto::hash(device_code))?;
        Ok(n == 1)
    }
}
