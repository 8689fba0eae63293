//! Exit codes. These are an interface: scripts depend on them, and `docs/` lists them.
//!
//! | code | meaning |
//! | ---- | ------- |
//! | 0    | success |
//! | 1    | any other failure (the provider refused the request, an unknown model, …) |
//! | 2    | usage: bad arguments or input |
//! | 64   | no credential (or the credential for the chosen model is missing) |
//! | 65   | forbidden: the credential was rejected, or the account has no model access |
//! | 69   | service unavailable: unreachable, 5xx, or a stream that failed part way |
//! | 75   | rate limited; try again later |
//! | 78   | configuration problem: `auth.json` refused, home unusable, or an authorization server misconfigured for mogplex (its metadata, PKCE, ID tokens, keys) |
//! | 130  | interrupted: Ctrl+C while waiting (a sign-in), nothing stored |

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const NO_CREDENTIAL: u8 = 64;
pub const FORBIDDEN: u8 = 65;
pub const UNAVAILABLE: u8 = 69;
pub const RATE_LIMITED: u8 = 75;
pub const CONFIG: u8 = 78;
pub const INTERRUPTED: u8 = 130;
