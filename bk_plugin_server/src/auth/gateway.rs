//! The BlueKing API gateway's JWT (`X-Bkapi-JWT`): RSA only (RS256/384/512 or PS256/384/512),
//! whose `kid` names our gateway, that has not expired (30 s leeway). Verified tokens are
//! remembered until their `exp` (bounded cache, `jwt_cache.rs`), so the gateway's repeated token
//! is not RSA-verified on every request.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::caller::{AuthError, Caller};
use super::jwt_cache::{TokenCache, VerifiedClaims};

/// The leeway, in seconds, on `exp` and `nbf`.
pub(super) const LEEWAY_SECONDS: u64 = 30;
/// How many verified tokens the verifier remembers by default (see [`GatewayVerifier`]).
pub(super) const DEFAULT_CACHE_CAPACITY: usize = 10_000;
const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Verifies gateway JWTs with the gateway's public key, and remembers the tokens it verified.
///
/// Verification uses jsonwebtoken's aws-lc-rs backend. Tokens that pass are kept in a bounded
/// cache keyed by the SHA-256 of the token (see `jwt_cache.rs` for the eviction rule), so the
/// gateway's repeated token costs a hash and a map lookup instead of an RSA verification. A
/// cached token is answered only before its `exp` and only for the key that verified it.
///
/// Clones share the key and the cache. To rotate the key at runtime, keep a clone and call
/// [`GatewayVerifier::replace_key`] with the new PEM: from that call on, every token is verified
/// with the new key and nothing verified with the old one is answered from the cache.
#[derive(Clone)]
pub(crate) struct GatewayVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    gateway: String,
    key: RwLock<Arc<GatewayKey>>,
    cache: Mutex<TokenCache>,
    clock: Clock,
}

/// One public key, with a generation number that changes whenever the key does.
struct GatewayKey {
    decoding: DecodingKey,
    /// The PEM's base64 body without whitespace: the same key gives the same text.
    identity: String,
    generation: u64,
}

impl std::fmt::Debug for GatewayVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayVerifier")
            .field("gateway", &self.inner.gateway)
            .finish()
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    app: Option<Party>,
    #[serde(default)]
    user: Option<Party>,
}

#[derive(Debug, Default, Deserialize)]
struct Party {
    #[serde(default)]
    app_code: Option<String>,
    #[serde(default)]
    bk_app_code: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    bk_username: Option<String>,
    #[serde(default)]
    verified: bool,
}

fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl GatewayKey {
    fn parse(public_key_pem: &str, generation: u64) -> Result<Self, String> {
        let decoding = DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).map_err(|e| {
            format!("the API gateway public key is not an RSA public key in PEM: {e}")
        })?;
        let identity = public_key_pem
            .lines()
            .filter(|l| !l.trim_start().starts_with("-----"))
            .flat_map(|l| l.split_whitespace())
            .collect();
        Ok(Self {
            decoding,
            identity,
            generation,
        })
    }
}

impl GatewayVerifier {
    /// A verifier for `gateway` with the PEM-encoded RSA public key, remembering up to
    /// [`DEFAULT_CACHE_CAPACITY`] verified tokens.
    pub(crate) fn new(public_key_pem: &str, gateway: &str) -> Result<Self, String> {
        Self::with_cache_capacity(public_key_pem, gateway, DEFAULT_CACHE_CAPACITY)
    }

    /// Like [`GatewayVerifier::new`], remembering up to `capacity` verified tokens (0: none,
    /// every request is verified in full).
    pub(crate) fn with_cache_capacity(
        public_key_pem: &str,
        gateway: &str,
        capacity: usize,
    ) -> Result<Self, String> {
        Self::build(public_key_pem, gateway, capacity, Arc::new(system_clock))
    }

    fn build(
        public_key_pem: &str,
        gateway: &str,
        capacity: usize,
        clock: Clock,
    ) -> Result<Self, String> {
        // One crypto provider for the process, whatever features other crates unify onto
        // jsonwebtoken (with two backends enabled it would refuse to pick one). An `Err` means
        // one is installed already.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let key = GatewayKey::parse(public_key_pem, 1)?;
        Ok(Self {
            inner: Arc::new(Inner {
                gateway: gateway.to_string(),
                key: RwLock::new(Arc::new(key)),
                cache: Mutex::new(TokenCache::new(capacity, 1, LEEWAY_SECONDS)),
                clock,
            }),
        })
    }

    /// Replaces the gateway's public key (key rotation). Returns whether the key changed: the
    /// same key again (even re-wrapped PEM) keeps the cache; a new one empties it, and no token
    /// verified with the old key is accepted from then on. A PEM that is not an RSA public key
    /// is refused and the current key stays.
    pub(crate) fn replace_key(&self, public_key_pem: &str) -> Result<bool, String> {
        let mut slot = self
            .inner
            .key
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let generation = slot.generation + 1;
        let key = GatewayKey::parse(public_key_pem, generation)?;
        if key.identity == slot.identity {
            return Ok(false);
        }
        // Empty the cache before the new key is visible: entries carry their key's generation,
        // so neither a lookup nor an insert by a verification still running with the old key
        // can bring an old-key token back.
        self.cache().reset(generation);
        *slot = Arc::new(key);
        Ok(true)
    }

    /// How many verified tokens are remembered now.
    #[cfg(test)]
    pub(crate) fn cached_tokens(&self) -> usize {
        self.cache().len()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, TokenCache> {
        // The cache is consistent after any panic (every change is one map operation).
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn current_key(&self) -> Arc<GatewayKey> {
        self.inner
            .key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Verifies `token` and extracts the caller: from the cache when this token was verified
    /// before with the current key and has not reached `exp`, else in full.
    pub(crate) fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let now = (self.inner.clock)();
        let key = self.current_key();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let cached = self.cache().get(&digest, key.generation, now);
        let claims = match cached {
            Some(claims) => claims,
            None => {
                let claims = self.verify_in_full(token, &key.decoding, now)?;
                self.cache()
                    .insert(digest, claims.clone(), key.generation, now);
                claims
            }
        };
        Ok(Caller {
            app_code: claims.app_code,
            username: claims.username,
            jwt: Some(token.to_string()),
        })
    }

    /// The full rules: RSA algorithms only, our gateway's `kid`, the signature, then `exp`
    /// (required) and `nbf` with [`LEEWAY_SECONDS`] against `now`.
    fn verify_in_full(
        &self,
        token: &str,
        key: &DecodingKey,
        now: u64,
    ) -> Result<VerifiedClaims, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if !RSA_ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted (RSA only)",
                header.alg
            )));
        }
        let kid = header.kid.unwrap_or_default();
        if kid != self.inner.gateway {
            return Err(AuthError::WrongGateway {
                expected: self.inner.gateway.clone(),
                found: kid,
            });
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        // The time rules are checked below against the verifier's clock, the one the cache uses.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::from(["exp".to_string()]);
        let data = decode::<Claims>(token, key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claims = data.claims;
        if claims.exp.saturating_add(LEEWAY_SECONDS) < now {
            return Err(AuthError::Invalid(format!(
                "the token expired at {} (now {now}, {LEEWAY_SECONDS} s leeway)",
                claims.exp
            )));
        }
        if let Some(nbf) = claims.nbf
            && nbf > now.saturating_add(LEEWAY_SECONDS)
        {
            return Err(AuthError::Invalid(format!(
                "the token is not valid before {nbf} (now {now}, {LEEWAY_SECONDS} s leeway)"
            )));
        }
        let app = claims.app.unwrap_or_default();
        let user = claims.user.unwrap_or_default();
        Ok(VerifiedClaims {
            app_code: app
                .verified
                .then(|| app.app_code.or(app.bk_app_code))
                .flatten(),
            username: user
                .verified
                .then(|| user.username.or(user.bk_username))
                .flatten(),
            exp: claims.exp,
            nbf: claims.nbf,
        })
    }
}

#[cfg(test)]
mod tests {
    //! The JWT rules and the verified-token cache, with a clock the tests move.
    use std::sync::atomic::{AtomicU64, Ordering};

    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::{Value, json};

    use super::*;

    const GATEWAY_PUB: &str = include_str!("../../../tests/fixtures/jwt/gateway.pub");
    const GATEWAY_KEY: &str = include_str!("../../../tests/fixtures/jwt/gateway.key");
    const OTHER_PUB: &str = include_str!("../../../tests/fixtures/jwt/other.pub");
    const OTHER_KEY: &str = include_str!("../../../tests/fixtures/jwt/other.key");
    const T0: u64 = 1_800_000_000;

    /// A verifier for gateway "gw" whose clock reads the returned cell.
    /// A verifier of the gateway's key that has verified (and cached) one token valid for ten
    /// minutes, and that token.
    fn verified_once() -> (GatewayVerifier, String) {
        let (verifier, _) = verifier(GATEWAY_PUB);
        let token = sign(&claims(T0 + 600));
        assert!(verifier.verify(&token).is_ok());
        (verifier, token)
    }

    fn verifier(public: &str) -> (GatewayVerifier, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(T0));
        let clock = now.clone();
        let verifier = GatewayVerifier::build(
            public,
            "gw",
            DEFAULT_CACHE_CAPACITY,
            Arc::new(move || clock.load(Ordering::SeqCst)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (verifier, now)
    }

    fn claims(exp: u64) -> Value {
        json!({
            "app": {"app_code": "bk_sops", "verified": true},
            "user": {"username": "admin", "verified": true},
            "exp": exp,
        })
    }

    fn sign_with(private: &str, kid: &str, alg: Algorithm, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_string());
        let key = EncodingKey::from_rsa_pem(private.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        encode(&header, claims, &key).unwrap_or_else(|e| panic!("{e}"))
    }

    fn sign(claims: &Value) -> String {
        sign_with(GATEWAY_KEY, "gw", Algorithm::RS512, claims)
    }

    #[test]
    fn a_valid_token_is_verified_once_then_answered_from_the_cache() {
        let (verifier, _) = verifier(GATEWAY_PUB);
        let token = sign(&claims(T0 + 600));
        let first = verifier.verify(&token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.app_code.as_deref(), Some("bk_sops"));
        assert_eq!(first.username.as_deref(), Some("admin"));
        assert_eq!(first.jwt.as_deref(), Some(token.as_str()));
        assert_eq!(verifier.cached_tokens(), 1);
        assert_eq!(verifier.verify(&token), Ok(first));
        assert_eq!(verifier.cached_tokens(), 1);
    }

    #[test]
    fn every_rsa_algorithm_verifies_and_the_clones_share_one_cache() {
        let (verifier, _) = verifier(GATEWAY_PUB);
        let clone = verifier.clone();
        for alg in RSA_ALGORITHMS {
            let token = sign_with(GATEWAY_KEY, "gw", alg, &claims(T0 + 600));
            assert!(clone.verify(&token).is_ok(), "{alg:?}");
        }
        assert_eq!(verifier.cached_tokens(), RSA_ALGORITHMS.len());
    }

    #[test]
    fn a_token_that_expires_while_cached_is_refused_once_verification_would_refuse_it() {
        let (verifier, now) = verifier(GATEWAY_PUB);
        let token = sign(&claims(T0 + 60));
        assert!(verifier.verify(&token).is_ok());
        assert_eq!(verifier.cached_tokens(), 1);
        // At exp the cache stops answering; verification still grants the leeway.
        now.store(T0 + 60, Ordering::SeqCst);
        assert!(verifier.verify(&token).is_ok(), "within the leeway");
        assert_eq!(
            verifier.cached_tokens(),
            0,
            "a token at or past exp is not cached"
        );
        now.store(T0 + 60 + LEEWAY_SECONDS + 1, Ordering::SeqCst);
        let refused = verifier.verify(&token);
        assert!(
            matches!(&refused, Err(AuthError::Invalid(m)) if m.contains("expired")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_token_already_expired_beyond_the_leeway_is_refused_and_not_cached() {
        let (verifier, _) = verifier(GATEWAY_PUB);
        let token = sign(&claims(T0 - LEEWAY_SECONDS - 1));
        assert!(verifier.verify(&token).is_err());
        assert_eq!(verifier.cached_tokens(), 0);
    }

    #[test]
    fn a_not_yet_valid_token_is_refused_until_its_nbf_minus_the_leeway() {
        let (verifier, now) = verifier(GATEWAY_PUB);
        let mut c = claims(T0 + 600);
        c["nbf"] = json!(T0 + 100);
        let token = sign(&c);
        let refused = verifier.verify(&token);
        assert!(
            matches!(&refused, Err(AuthError::Invalid(m)) if m.contains("not valid before")),
            "{refused:?}"
        );
        assert_eq!(verifier.cached_tokens(), 0);
        now.store(T0 + 100 - LEEWAY_SECONDS, Ordering::SeqCst);
        assert!(verifier.verify(&token).is_ok());
    }

    #[test]
    fn a_cached_token_is_refused_after_the_key_changes_and_accepted_again_after_rotating_back() {
        let (verifier, token) = verified_once();
        assert_eq!(verifier.cached_tokens(), 1);
        assert_eq!(verifier.replace_key(OTHER_PUB), Ok(true));
        assert_eq!(
            verifier.cached_tokens(),
            0,
            "the key change empties the cache"
        );
        assert!(
            matches!(verifier.verify(&token), Err(AuthError::Invalid(_))),
            "signed by the old key"
        );
        let new_token = sign_with(OTHER_KEY, "gw", Algorithm::RS512, &claims(T0 + 600));
        assert!(verifier.verify(&new_token).is_ok());
        assert_eq!(verifier.replace_key(GATEWAY_PUB), Ok(true));
        assert!(verifier.verify(&new_token).is_err());
        assert!(verifier.verify(&token).is_ok());
    }

    #[test]
    fn the_same_key_again_keeps_the_cache_and_a_bad_key_changes_nothing() {
        let (verifier, token) = verified_once();
        let rewrapped = GATEWAY_PUB.replace('\n', "\r\n");
        assert_eq!(verifier.replace_key(&rewrapped), Ok(false));
        assert_eq!(verifier.cached_tokens(), 1);
        assert!(verifier.replace_key("not a key").is_err());
        assert_eq!(verifier.cached_tokens(), 1);
        assert!(verifier.verify(&token).is_ok());
    }

    #[test]
    fn refused_tokens_are_never_cached() {
        let (verifier, _) = verifier(GATEWAY_PUB);
        let good = claims(T0 + 600);
        let header = |alg: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(json!({"alg": alg, "typ": "JWT", "kid": "gw"}).to_string())
        };
        let payload = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(good.to_string())
        };
        let hs256 = {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("gw".into());
            encode(&h, &good, &EncodingKey::from_secret(GATEWAY_PUB.as_bytes()))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let no_exp = json!({"app": {"app_code": "bk_sops", "verified": true}});
        let valid = sign(&good);
        let (head, rest) = valid.split_once('.').unwrap_or_default();
        let (_, signature) = rest.split_once('.').unwrap_or_default();
        let tampered = format!("{head}.{}.{signature}", {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(claims(T0 + 999_999).to_string())
        });
        let cases = [
            ("garbage", "not.a.jwt".to_string()),
            ("alg none", format!("{}.{payload}.", header("none"))),
            ("HS256 with the public key as secret", hs256),
            (
                "wrong key",
                sign_with(OTHER_KEY, "gw", Algorithm::RS512, &good),
            ),
            (
                "wrong kid",
                sign_with(GATEWAY_KEY, "other-gw", Algorithm::RS512, &good),
            ),
            ("no exp", sign(&no_exp)),
            ("tampered claims", tampered),
        ];
        for (name, token) in cases {
            for _ in 0..2 {
                assert!(verifier.verify(&token).is_err(), "{name} is refused");
            }
            assert_eq!(verifier.cached_tokens(), 0, "{name} is not cached");
        }
        assert!(verifier.verify(&valid).is_ok());
    }

    #[test]
    fn with_a_zero_capacity_nothing_is_cached_and_tokens_still_verify() {
        let verifier = GatewayVerifier::with_cache_capacity(GATEWAY_PUB, "gw", 0)
            .unwrap_or_else(|e| panic!("{e}"));
        let token = sign(&claims(system_clock() + 600));
        assert!(verifier.verify(&token).is_ok());
        assert!(verifier.verify(&token).is_ok());
        assert_eq!(verifier.cached_tokens(), 0);
    }
}

#[cfg(test)]
mod fuzz {
    //! Fuzzing JWT handling: nothing but a gateway-signed RSA token is ever accepted.
    use super::*;
    use proptest::prelude::*;

    const PUBLIC: &str = include_str!("../../../tests/fixtures/jwt/gateway.pub");

    proptest! {
        #[test]
        fn arbitrary_strings_are_never_accepted(text in "\\PC{0,200}", dots in 0usize..4) {
            let verifier = GatewayVerifier::new(PUBLIC, "gw").map_err(TestCaseError::fail)?;
            let token = std::iter::repeat_n(text.as_str(), dots + 1).collect::<Vec<_>>().join(".");
            prop_assert!(verifier.verify(&token).is_err());
        }
    }
}
