//! Who may try a password or a device code, and how often: the policy over the database's
//! throttle counters ([`crate::db::Db::throttle_take`]), so limits hold under concurrency and
//! across every process on one database.
//!
//! Sign-in counts three things in a 15-minute window: attempts from an address (30), attempts
//! on an account from an address (5), and failures on an account from anywhere. The guesser is
//! stopped by the first two; the third does not lock the account for everyone: once an account
//! has had [`ACCOUNT_SOFT_LIMIT`] failures, only addresses that have themselves been failing on
//! it are refused, so the owner signing in from an address that has not been failing gets in
//! (and the log says the account was under attack). Every attempt takes its slot before the
//! password is checked, and a success gives its slots back.

use crate::AppState;
use crate::crypto;
use crate::db::DbError;
use std::net::SocketAddr;

/// The window of every sign-in and device-code limit, in seconds.
pub const WINDOW: i64 = 15 * 60;
/// Attempts from one address, on any account.
pub const PER_ADDRESS: i64 = 30;
/// Attempts on one account from one address.
pub const PER_ACCOUNT_AND_ADDRESS: i64 = 5;
/// Failures on one account from anywhere after which addresses that have been failing on it
/// are refused.
pub const ACCOUNT_SOFT_LIMIT: i64 = 10;
/// Wrong device codes per account, and per address.
pub const DEVICE_WRONG: i64 = 10;

/// Why an attempt is refused, and when to come back.
#[derive(Debug, Clone)]
pub struct Refused {
    pub until: i64,
    pub message: String,
}

fn minutes_until(t: i64) -> i64 {
    ((t - crypto::now()).max(60) + 59) / 60
}

fn address(addr: &SocketAddr) -> String {
    format!("addr:{}", addr.ip())
}

/// A sign-in attempt that may go ahead: its slots, settled by [`SignIn::succeeded`] or
/// [`SignIn::failed`].
#[derive(Debug)]
pub struct SignIn {
    address_key: String,
    pair_key: String,
    account_key: String,
}

impl SignIn {
    /// Takes the attempt's slots, or says why not.
    pub async fn begin(
        s: &AppState,
        email: &str,
        addr: &SocketAddr,
    ) -> Result<Result<SignIn, Refused>, DbError> {
        let account = crypto::hash(email);
        let a = SignIn {
            address_key: format!("login:{}", address(addr)),
            pair_key: format!("login:pair:{account}:{}", address(addr)),
            account_key: format!("login:acct:{account}"),
        };
        let db = &s.db;
        if let Err(until) = db
            .throttle_take(&a.address_key, WINDOW, PER_ADDRESS)
            .await?
        {
            return Ok(Err(Refused {
                until,
                message: format!(
                    "Too many sign-in attempts from this address. Try again in {} minutes.",
                    minutes_until(until)
                ),
            }));
        }
        let pair = match db
            .throttle_take(&a.pair_key, WINDOW, PER_ACCOUNT_AND_ADDRESS)
            .await?
        {
            Ok(n) => n,
            Err(until) => {
                db.throttle_refund(&a.address_key).await?;
                return Ok(Err(Refused {
                    until,
                    message: format!(
                        "Too many sign-in attempts. Try again in {} minutes.",
                        minutes_until(until)
                    ),
                }));
            }
        };
        let (failures, until) = db.throttle_count(&a.account_key, WINDOW).await?;
        // `pair > 1`: this address has tried this account before in the window.
        if failures >= ACCOUNT_SOFT_LIMIT && pair > 1 {
            db.throttle_refund(&a.address_key).await?;
            db.throttle_refund(&a.pair_key).await?;
            return Ok(Err(Refused {
                until,
                message: format!(
                    "This account has had many wrong passwords, so sign-in from this address is paused for {} minutes. \
                     Its owner can still sign in from another device or network.",
                    minutes_until(until)
                ),
            }));
        }
        Ok(Ok(a))
    }

    /// A correct password: its slots are given back and the account-wide failures cleared. The
    /// failures from this address on this account stay counted for their window, so concurrent
    /// guesses never get more than [`PER_ACCOUNT_AND_ADDRESS`] checks, whatever order they run in.
    pub async fn succeeded(self, s: &AppState) -> Result<(), DbError> {
        let (failures, _) = s.db.throttle_count(&self.account_key, WINDOW).await?;
        if failures > 0 {
            tracing::warn!(
                failures,
                "signed in to an account that had failed sign-in attempts in the last 15 minutes"
            );
        }
        s.db.throttle_refund(&self.address_key).await?;
        s.db.throttle_refund(&self.pair_key).await?;
        s.db.throttle_clear(&self.account_key).await?;
        Ok(())
    }

    /// The password could not be checked (the hashing pool was busy): the slots go back and
    /// nothing is counted.
    pub async fn not_checked(self, s: &AppState) -> Result<(), DbError> {
        s.db.throttle_refund(&self.address_key).await?;
        s.db.throttle_refund(&self.pair_key).await?;
        Ok(())
    }

    /// A wrong password (or an unknown account): the slots stay taken, the account counts it.
    pub async fn failed(self, s: &AppState) -> Result<(), DbError> {
        s.db.throttle_hit(&self.account_key, WINDOW).await?;
        Ok(())
    }
}

/// A device-code attempt (entering a code, or approving one) that may go ahead.
#[derive(Debug)]
pub struct DeviceCode {
    keys: [String; 2],
}

impl DeviceCode {
    pub async fn begin(
        s: &AppState,
        user_id: &str,
        addr: &SocketAddr,
    ) -> Result<Result<DeviceCode, Refused>, DbError> {
        let keys = [
            format!("device:{user_id}"),
            format!("device:{}", address(addr)),
        ];
        for (i, key) in keys.iter().enumerate() {
            if let Err(until) = s.db.throttle_take(key, WINDOW, DEVICE_WRONG).await? {
                for taken in &keys[..i] {
                    s.db.throttle_refund(taken).await?;
                }
                return Ok(Err(Refused {
                    until,
                    message: format!(
                        "Too many wrong codes. Wait {} minutes and try again.",
                        minutes_until(until)
                    ),
                }));
            }
        }
        Ok(Ok(DeviceCode { keys }))
    }

    /// The code was right: the slots are given back. (A wrong one keeps them.)
    pub async fn valid(self, s: &AppState) -> Result<(), DbError> {
        for key in &self.keys {
            s.db.throttle_refund(key).await?;
        }
        Ok(())
    }
}
