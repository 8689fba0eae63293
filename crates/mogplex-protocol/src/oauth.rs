//! The OAuth 2.1 contract between the CLI (the public client `mogplex-cli`) and the account
//! server (SPEC sections 4 and 7): the registered client, scopes, grants and redirect, the RFC
//! 8414 metadata document, the token and device authorization responses, and the RFC 6749 §5.2
//! error body; for the OpenID provider, its discovery document, JWK set, ID token claims and
//! userinfo, and RFC 7662 introspection.
//!
//! Token strings are a type parameter so each side picks its own: the server builds these with
//! `String`, the CLI reads them into its redacting secret type. `Debug` never shows a token,
//! whatever the type.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The one registered public client: the Mogplex CLI.
pub const CLIENT_ID: &str = "mogplex-cli";
/// The scope the CLI asks for, and the server grants when a request names none.
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access read write";
/// Every scope the server supports.
pub const SUPPORTED_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "read",
    "write",
];

/// The scopes of the demo MCP server (`mogplex-server dev`): granted only with a `resource`
/// (RFC 8707), never to an account token. `mcp:admin` is the step-up scope.
pub const MCP_SCOPES: &[&str] = &["mcp:demo", "mcp:admin"];

/// `grant_type` values (RFC 6749 §4.1.3, §6; RFC 8628 §3.4).
pub const AUTHORIZATION_CODE_GRANT: &str = "authorization_code";
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The only PKCE method either side accepts.
pub const PKCE_METHOD: &str = "S256";

/// The loopback ports the CLI listens on for the browser's return, in order of preference. The
/// hosted service matches redirect URIs exactly, so these two are registered there.
pub const LOOPBACK_PORTS: [u16; 2] = [24816, 24818];
/// The path of the loopback redirect: `http://127.0.0.1:PORT/auth/callback`.
pub const CALLBACK_PATH: &str = "/auth/callback";

/// The loopback redirect URI on `port`.
pub fn loopback_redirect_uri(port: u16) -> String {
    format!("http://127.0.0.1:{port}{CALLBACK_PATH}")
}

/// RFC 6749 §5.2 and RFC 8628 §3.5 `error` codes.
pub mod error_code {
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const INVALID_CLIENT: &str = "invalid_client";
    pub const INVALID_GRANT: &str = "invalid_grant";
    pub const UNAUTHORIZED_CLIENT: &str = "unauthorized_client";
    pub const UNSUPPORTED_GRANT_TYPE: &str = "unsupported_grant_type";
    pub const UNSUPPORTED_RESPONSE_TYPE: &str = "unsupported_response_type";
    pub const INVALID_SCOPE: &str = "invalid_scope";
    pub const ACCESS_DENIED: &str = "access_denied";
    pub const AUTHORIZATION_PENDING: &str = "authorization_pending";
    pub const SLOW_DOWN: &str = "slow_down";
    pub const EXPIRED_TOKEN: &str = "expired_token";
    pub const SERVER_ERROR: &str = "server_error";
    /// RFC 8707 §2: the `resource` is invalid, unknown, or not the one the grant is bound to.
    pub const INVALID_TARGET: &str = "invalid_target";
}

/// RFC 8414 authorization server metadata, with the OpenID Connect Discovery 1.0 members an
/// OpenID provider adds. Only `issuer`, `authorization_endpoint` and `token_endpoint` are
/// required; an absent list means the RFC's default, so lists are `Option`s. Unknown members are
/// ignored on read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// RFC 7009.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// RFC 8628.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_modes_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// RFC 9207: the authorization response carries `iss`. Absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 7662.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 7591 dynamic client registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// OpenID Connect Discovery: the signing keys of ID tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_types_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
}

/// OpenID Connect Discovery 1.0 §3: the document at `/.well-known/openid-configuration`. It has
/// the same members as the RFC 8414 document (RFC 8414 §2 defines that one as a superset of this
/// one), with `jwks_uri`, `response_types_supported`, `subject_types_supported` and
/// `id_token_signing_alg_values_supported` required by OpenID Connect.
pub type OpenIdProviderMetadata = AuthorizationServerMetadata;

/// The signing algorithm of the server's ID tokens (RFC 7518 §3.4: ECDSA P-256 with SHA-256).
pub const ID_TOKEN_SIGNING_ALG: &str = "ES256";

/// Client authentication methods at the token, revocation and introspection endpoints (RFC 7591
/// §2): `none` for public clients, the two `client_secret_*` ones for confidential clients.
pub mod auth_method {
    pub const NONE: &str = "none";
    pub const CLIENT_SECRET_BASIC: &str = "client_secret_basic";
    pub const CLIENT_SECRET_POST: &str = "client_secret_post";
}

/// The claims the server puts in ID tokens and userinfo answers.
pub const SUPPORTED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "email",
    "email_verified",
    "name",
];

/// Bearer token errors of RFC 6750 §3.1 (the userinfo endpoint's).
pub mod bearer_error {
    pub const INVALID_TOKEN: &str = "invalid_token";
    pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";
}

/// One public key of a JSON Web Key Set (RFC 7517): this server publishes EC P-256 keys for
/// ES256 (`x`, `y` base64url coordinates); identity providers may publish RSA ones (`n`, `e`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus and exponent (base64url), for identity providers' RS256 keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// RFC 7517 §5: the document at `jwks_uri`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// The claims of an ID token (OpenID Connect Core §2, §5.1). `aud` is one client id: this
/// server issues each ID token to one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(flatten)]
    pub profile: UserInfo,
}

/// The userinfo answer (OpenID Connect Core §5.3.2): `sub` always; `email` and
/// `email_verified` with the `email` scope, `name` with `profile`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// RFC 7662 §2.2 token introspection response. Only `active` is required; an inactive token
/// answers `{"active": false}` and nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// A successful token response (RFC 6749 §5.1; `id_token` from OpenID Connect). `T` is the type
/// of the token strings.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct TokenResponse<T = String> {
    pub access_token: T,
    #[serde(default = "bearer")]
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<T>,
}

fn bearer() -> String {
    "Bearer".into()
}

/// Shows which tokens are present, never their values.
fn present<T>(t: &Option<T>) -> Option<&'static str> {
    t.as_ref().map(|_| "[redacted]")
}

impl<T> fmt::Debug for TokenResponse<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &present(&self.refresh_token))
            .field("scope", &self.scope)
            .field("id_token", &present(&self.id_token))
            .finish()
    }
}

/// RFC 8628 §3.2 device authorization response. `T` is the type of the device code.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct DeviceAuthorizationResponse<T = String> {
    pub device_code: T,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
}

impl<T> fmt::Debug for DeviceAuthorizationResponse<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorizationResponse")
            .field("device_code", &"[redacted]")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("verification_uri_complete", &self.verification_uri_complete)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

/// RFC 6749 §5.2 error response: `{"error", "error_description"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl OAuthErrorBody {
    pub fn new(error: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            error_description: Some(description.into()),
            error_uri: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_response_defaults_and_redacted_debug() {
        let t: TokenResponse =
            serde_json::from_value(json!({"access_token": "mog_at_secret"})).unwrap();
        assert_eq!(t.token_type, "Bearer");
        assert_eq!(t.refresh_token, None);
        let full = TokenResponse {
            access_token: "mog_at_secret".to_owned(),
            token_type: "Bearer".into(),
            expires_in: Some(3600),
            refresh_token: Some("mog_rt_secret".to_owned()),
            scope: Some(DEFAULT_SCOPE.into()),
            id_token: None,
        };
        assert_eq!(
            serde_json::to_string(&full).unwrap(),
            r#"{"access_token":"mog_at_secret","token_type":"Bearer","expires_in":3600,"refresh_token":"mog_rt_secret","scope":"openid profile email offline_access read write"}"#
        );
        let shown = format!("{full:?}");
        assert!(!shown.contains("secret"), "{shown}");
        let d = DeviceAuthorizationResponse {
            device_code: "mog_dc_secret".to_owned(),
            user_code: "BCDF-GHJK".into(),
            verification_uri: "http://x/device".into(),
            verification_uri_complete: None,
            expires_in: 600,
            interval: Some(5),
        };
        assert!(!format!("{d:?}").contains("secret"));
    }

    /// A token type without `Default` (as the CLI's secret type) still deserializes.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Opaque(String);

    #[test]
    fn token_types_need_not_have_a_default() {
        let t: TokenResponse<Opaque> = serde_json::from_value(
            json!({"access_token": "a", "refresh_token": "r", "expires_in": 60}),
        )
        .unwrap();
        assert_eq!(t.refresh_token, Some(Opaque("r".into())));
        let d: DeviceAuthorizationResponse<Opaque> = serde_json::from_value(json!({
            "device_code": "d", "user_code": "U", "verification_uri": "v", "expires_in": 1
        }))
        .unwrap();
        assert_eq!(d.device_code, Opaque("d".into()));
    }

    #[test]
    fn metadata_reads_a_minimal_document_and_omits_what_is_unset() {
        let m: AuthorizationServerMetadata = serde_json::from_value(json!({
            "issuer": "https://as.example",
            "authorization_endpoint": "https://as.example/a",
            "token_endpoint": "https://as.example/t",
            "unknown_member": 1
        }))
        .unwrap();
        assert!(!m.authorization_response_iss_parameter_supported);
        assert_eq!(m.jwks_uri, None);
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({
                "issuer": "https://as.example",
                "authorization_endpoint": "https://as.example/a",
                "token_endpoint": "https://as.example/t"
            })
        );
        assert_eq!(
            loopback_redirect_uri(LOOPBACK_PORTS[0]),
            "http://127.0.0.1:24816/auth/callback"
        );
        assert_eq!(SUPPORTED_SCOPES.join(" "), DEFAULT_SCOPE);
    }
}
