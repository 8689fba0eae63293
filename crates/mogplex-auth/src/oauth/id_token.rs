//! OpenID Connect ID token validation (Core 1.0 section 3.1.3.7) for a sign-in that asked for
//! `openid`: the signature through the keys the provider advertises at `jwks_uri`, `iss` (the
//! discovered issuer, exactly), `aud` (our client id; with several audiences `azp` must be ours
//! too), `exp` (a minute of leeway), and the `nonce` the authorization request carried.
//!
//! The JOSE parsing and claim checks are `jsonwebtoken`'s; its signature checks run on `ring`
//! through the small [`RING`] provider below, so the CLI keeps the one crypto library its TLS
//! already uses. HMAC algorithms are refused: a public client has no secret to check them with.

use super::{OAuthError, discovery::normalize};
use crate::secret::Secret;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;

/// What the CLI reads from a valid ID token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IdClaims {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    aud: Option<Value>,
}

/// A JWKS document's usable keys (keys of unknown types are skipped, as RFC 7517 §5 asks).
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

impl KeySet {
    /// Parses a JWKS document; `Err` says why it cannot be used.
    pub fn parse(body: &str) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(body).map_err(|e| format!("it is not JSON ({e})"))?;
        let Some(Value::Array(raw)) = doc.get("keys") else {
            return Err("it has no \"keys\" array".into());
        };
        let keys: Vec<Jwk> = raw
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter(|k| {
                !matches!(
                    k.common.public_key_use,
                    Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
                ) && !matches!(
                    k.algorithm,
                    jsonwebtoken::jwk::AlgorithmParameters::Other(_)
                )
            })
            .collect();
        if keys.is_empty() {
            return Err(format!(
                "none of its {} keys is a signing key mogplex can read",
                raw.len()
            ));
        }
        Ok(Self { keys })
    }

    /// The keys that may have signed a token with this header.
    fn for_header(&self, kid: Option<&str>, alg: Algorithm) -> Vec<&Jwk> {
        self.keys
            .iter()
            .filter(|k| match kid {
                Some(kid) => k.common.key_id.as_deref() == Some(kid),
                None => true,
            })
            .filter(|k| {
                k.common
                    .key_algorithm
                    .is_none_or(|a| a == jsonwebtoken::jwk::KeyAlgorithm::from(alg))
            })
            .collect()
    }
}

/// Why an ID token was refused, for the user and the server's administrator.
fn refused(server: &str, problem: impl Into<String>, fix: impl Into<String>) -> OAuthError {
    OAuthError::Misconfigured {
        server: normalize(server).to_owned(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// The `alg` of a token's header, read by hand so that `none` (which `jsonwebtoken` has no name
/// for) is reported as what it is.
fn raw_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let head = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(str::to_owned)
}

/// Validates `token` from `issuer` for `client_id` against `keys`; `nonce` is the one sent.
pub fn validate(
    token: &Secret,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    keys: &KeySet,
) -> Result<IdClaims, OAuthError> {
    install();
    let token = token.expose();
    let fix_keys = "have its administrator check the provider's signing keys (jwks_uri)";
    if token.split('.').count() != 3 {
        return Err(refused(
            issuer,
            "it returned a malformed ID token (not a signed JWT)",
            "have its administrator check that ID tokens are signed JWTs",
        ));
    }
    match raw_alg(token).as_deref() {
        Some("none") | Some("") => {
            return Err(refused(
                issuer,
                "it returned an unsigned ID token (alg \"none\")",
                "have its administrator sign ID tokens (for example with RS256 or ES256)",
            ));
        }
        Some(a) if a.starts_with("HS") => {
            return Err(refused(
                issuer,
                format!(
                    "it signed the ID token with {a}, a shared-secret algorithm a public client cannot check"
                ),
                "have its administrator sign ID tokens for this client with RS256 or ES256",
            ));
        }
        _ => {}
    }
    let header = jsonwebtoken::decode_header(token).map_err(|e| {
        refused(
            issuer,
            format!("it returned a malformed ID token ({e})"),
            "have its administrator check that ID tokens are signed JWTs",
        )
    })?;
    let candidates = keys.for_header(header.kid.as_deref(), header.alg);
    if candidates.is_empty() {
        return Err(refused(
            issuer,
            format!(
                "the ID token's signing key ({}) is not among the keys at its jwks_uri",
                header.kid.as_deref().unwrap_or("no kid")
            ),
            fix_keys,
        ));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 60;
    let mut last = None;
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<IdClaims>(token, &key, &validation) {
            Ok(data) => return check_claims(data.claims, issuer, client_id, nonce),
            Err(e) => last = Some(e),
        }
    }
    let Some(e) = last else {
        return Err(refused(
            issuer,
            "none of the keys at its jwks_uri can check the ID token's signature",
            fix_keys,
        ));
    };
    Err(match e.kind() {
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => {
            refused(
                issuer,
                "the ID token's signature does not verify with the keys at its jwks_uri",
                fix_keys,
            )
        }
        ErrorKind::InvalidAudience => refused(
            issuer,
            format!("it issued the ID token for another audience, not the client {client_id}"),
            format!(
                "set MOGPLEX_CLIENT_ID to the client registered for mogplex, or have its administrator issue tokens to {client_id}"
            ),
        ),
        ErrorKind::InvalidIssuer => refused(
            issuer,
            format!("the ID token names another issuer than {issuer}"),
            "have its administrator make the ID token's iss the issuer in its metadata",
        ),
        ErrorKind::ExpiredSignature => refused(
            issuer,
            "the ID token it returned has already expired",
            "check this machine's clock, and the provider's ID token lifetime",
        ),
        ErrorKind::ImmatureSignature => refused(
            issuer,
            "the ID token it returned is not valid yet",
            "check this machine's clock",
        ),
        ErrorKind::MissingRequiredClaim(c) => refused(
            issuer,
            format!("the ID token has no {c} claim"),
            "have its administrator issue standard OpenID Connect ID tokens",
        ),
        other => refused(
            issuer,
            format!("it returned an ID token mogplex cannot read ({other:?})"),
            "have its administrator issue standard OpenID Connect ID tokens",
        ),
    })
}

fn check_claims(
    claims: IdClaims,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
) -> Result<IdClaims, OAuthError> {
    let several = matches!(&claims.aud, Some(Value::Array(a)) if a.len() > 1);
    if several && claims.azp.as_deref() != Some(client_id) {
        return Err(refused(
            issuer,
            format!(
                "the ID token has several audiences and is not authorized for {client_id} (azp)"
            ),
            "have its administrator issue ID tokens to this client alone",
        ));
    }
    if let Some(expected) = nonce {
        let ok = claims
            .nonce
            .as_deref()
            .is_some_and(|n| bool::from(n.as_bytes().ct_eq(expected.as_bytes())));
        if !ok {
            return Err(refused(
                issuer,
                "the ID token does not carry the nonce of this sign-in",
                "have its administrator return the authorization request's nonce in the ID token",
            ));
        }
    }
    Ok(claims)
}

/// Installs [`RING`] as jsonwebtoken's process-wide provider (once; a provider installed
/// already is as good, since only this crate installs one).
fn install() {
    let _ = RING.install_default();
}

/// jsonwebtoken's crypto on ring: verification only (the CLI never signs a JWT).
static RING: CryptoProvider = CryptoProvider {
    signer_factory: no_signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(ErrorKind::UnsupportedAlgorithm.into()),
        rsa_pub_components_from_public_key: |_| Err(ErrorKind::UnsupportedAlgorithm.into()),
        ec_pub_components_from_private_key: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
        compute_digest,
    },
};

fn no_signer(_: &Algorithm, _: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    Err(ErrorKind::UnsupportedAlgorithm.into())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> jsonwebtoken::errors::Result<Vec<u8>> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    };
    Ok(ring::digest::digest(alg, data).as_ref().to_vec())
}

/// A public key and the ring algorithm that checks signatures with it.
struct RingVerifier {
    alg: Algorithm,
    key: Key,
}

enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        params: &'static sig::RsaParameters,
    },
    Raw {
        bytes: Vec<u8>,
        algorithm: &'static dyn VerificationAlgorithm,
    },
}

fn verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    use jsonwebtoken::DecodingKeyKind;
    let rsa = |params: &'static sig::RsaParameters| match key.kind() {
        DecodingKeyKind::RsaModulusExponent { n, e } => Ok(Key::Rsa {
            n: n.clone(),
            e: e.clone(),
            params,
        }),
        DecodingKeyKind::SecretOrDer(_) => Err(jsonwebtoken::errors::Error::from(
            ErrorKind::InvalidKeyFormat,
        )),
    };
    let raw = |algorithm: &'static dyn VerificationAlgorithm| {
        key.try_get_as_bytes().map(|b| Key::Raw {
            bytes: b.to_vec(),
            algorithm,
        })
    };
    let key = match alg {
        Algorithm::RS256 => rsa(&sig::RSA_PKCS1_2048_8192_SHA256)?,
        Algorithm::RS384 => rsa(&sig::RSA_PKCS1_2048_8192_SHA384)?,
        Algorithm::RS512 => rsa(&sig::RSA_PKCS1_2048_8192_SHA512)?,
        Algorithm::PS256 => rsa(&sig::RSA_PSS_2048_8192_SHA256)?,
        Algorithm::PS384 => rsa(&sig::RSA_PSS_2048_8192_SHA384)?,
        Algorithm::PS512 => rsa(&sig::RSA_PSS_2048_8192_SHA512)?,
        Algorithm::ES256 => raw(&sig::ECDSA_P256_SHA256_FIXED)?,
        Algorithm::ES384 => raw(&sig::ECDSA_P384_SHA384_FIXED)?,
        Algorithm::EdDSA => raw(&sig::ED25519)?,
        // HMAC (a public client has no secret) and anything newer than this code.
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(RingVerifier { alg: *alg, key }))
}

impl jsonwebtoken::signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(
        &self,
        msg: &[u8],
        signature: &Vec<u8>,
    ) -> Result<(), jsonwebtoken::signature::Error> {
        let ok = match &self.key {
            Key::Rsa { n, e, params } => sig::RsaPublicKeyComponents { n, e }
                .verify(params, msg, signature)
                .is_ok(),
            Key::Raw { bytes, algorithm } => UnparsedPublicKey::new(*algorithm, bytes)
                .verify(msg, signature)
                .is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(jsonwebtoken::signature::Error::new())
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    struct Signer {
        pair: EcdsaKeyPair,
    }

    impl Signer {
        fn new() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            Self { pair }
        }

        fn jwks(&self, kid: &str) -> String {
            let p = self.pair.public_key().as_ref();
            json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..])}]})
            .to_string()
        }

        fn sign(&self, header: Value, claims: Value) -> Secret {
            let input = format!(
                "{}.{}",
                B64.encode(header.to_string()),
                B64.encode(claims.to_string())
            );
            let s = self
                .pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap();
            Secret::new(format!("{input}.{}", B64.encode(s.as_ref())))
        }
    }

    fn claims(aud: Value, nonce: &str, exp_in: i64) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({"iss": "http://127.0.0.1:9/oidc", "sub": "alice", "aud": aud, "exp": now + exp_in,
            "iat": now, "nonce": nonce, "email": "alice@example.com"})
    }

    fn problem(r: Result<IdClaims, OAuthError>) -> String {
        match r {
            Err(OAuthError::Misconfigured { problem, .. }) => problem,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_signed_token_for_us_with_our_nonce_is_accepted_and_nothing_else() {
        let s = Signer::new();
        let keys = KeySet::parse(&s.jwks("k1")).unwrap();
        let iss = "http://127.0.0.1:9/oidc";
        let head = json!({"alg": "ES256", "kid": "k1", "typ": "JWT"});
        let good = s.sign(head.clone(), claims(json!("mogplex-cli"), "n1", 300));
        let c = validate(&good, iss, "mogplex-cli", Some("n1"), &keys).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.email.as_deref()),
            ("alice", Some("alice@example.com"))
        );

        assert!(problem(validate(&good, iss, "mogplex-cli", Some("n2"), &keys)).contains("nonce"));
        assert!(
            problem(validate(&good, iss, "other", Some("n1"), &keys)).contains("another audience")
        );
        assert!(
            problem(validate(
                &good,
                "http://127.0.0.1:9/x",
                "mogplex-cli",
                Some("n1"),
                &keys
            ))
            .contains("another issuer")
        );
        let old = s.sign(head.clone(), claims(json!("mogplex-cli"), "n1", -3600));
        assert!(problem(validate(&old, iss, "mogplex-cli", Some("n1"), &keys)).contains("expired"));
        let several = s.sign(head.clone(), claims(json!(["mogplex-cli", "x"]), "n1", 300));
        assert!(problem(validate(&several, iss, "mogplex-cli", Some("n1"), &keys)).contains("azp"));

        let other = Signer::new();
        let forged = other.sign(head, claims(json!("mogplex-cli"), "n1", 300));
        assert!(
            problem(validate(&forged, iss, "mogplex-cli", Some("n1"), &keys))
                .contains("does not verify")
        );
        let unknown_kid = s.sign(
            json!({"alg": "ES256", "kid": "k9"}),
            claims(json!("mogplex-cli"), "n1", 300),
        );
        assert!(
            problem(validate(
                &unknown_kid,
                iss,
                "mogplex-cli",
                Some("n1"),
                &keys
            ))
            .contains("not among")
        );

        let unsigned = Secret::new(format!(
            "{}.{}.",
            B64.encode(json!({"alg": "none"}).to_string()),
            B64.encode(claims(json!("mogplex-cli"), "n1", 300).to_string())
        ));
        assert!(
            problem(validate(&unsigned, iss, "mogplex-cli", Some("n1"), &keys))
                .contains("unsigned")
        );
        assert!(
            problem(validate(
                &Secret::new("garbage"),
                iss,
                "mogplex-cli",
                None,
                &keys
            ))
            .contains("malformed")
        );
        let hs = Secret::new(format!(
            "{}.e30.c2ln",
            B64.encode(json!({"alg": "HS256"}).to_string())
        ));
        assert!(problem(validate(&hs, iss, "mogplex-cli", None, &keys)).contains("HS256"));
    }

    #[test]
    fn key_sets_that_cannot_be_used_say_why() {
        assert!(KeySet::parse("<html>").unwrap_err().contains("not JSON"));
        assert!(KeySet::parse("{}").unwrap_err().contains("no \"keys\""));
        assert!(
            KeySet::parse(r#"{"keys":[{"kty":"XYZ"}]}"#)
                .unwrap_err()
                .contains("none of its 1")
        );
    }
}
