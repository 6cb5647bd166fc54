//! Callback tokens: unforgeable, expiring, URL-safe, checked without the database.
//!
//! A token is the URL-safe base64 (no padding, 71 characters) of
//! `version (1) | trace id (16) | callback id (16) | expiry, Unix seconds, big-endian (4) |
//! HMAC-SHA256 of all that, first 16 bytes`. The HMAC key is derived from
//! `BK_PLUGIN_CALLBACK_SECRET`, else `BKPAAS_APP_SECRET`. Verification recomputes the MAC and
//! compares in constant time, then checks the expiry; garbage is rejected before any lookup.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const BODY_LEN: usize = 1 + 16 + 16 + 4;
const TOKEN_LEN: usize = BODY_LEN + MAC_LEN;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// Not a token of ours at all.
    #[error("invalid token: malformed")]
    Malformed,
    /// The signature does not match: forged or tampered with.
    #[error("invalid token: bad signature")]
    BadSignature,
    /// Past its expiry.
    #[error("invalid token: expired")]
    Expired,
    /// The ids are not 32 hex characters.
    #[error("invalid id: {0}")]
    BadId(String),
}

/// Signs and verifies callback tokens with one key.
#[derive(Clone)]
pub(crate) struct TokenSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

/// The ids a valid token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallbackClaims {
    /// The invocation.
    pub trace_id: String,
    /// The callback.
    pub callback_id: String,
    /// Unix seconds after which the token is refused.
    pub expires_at: u32,
}

fn hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    }
}

fn hex16(id: &str) -> Result<[u8; 16], TokenError> {
    let bad = || TokenError::BadId(id.to_string());
    if id.len() != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, chunk) in id.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(text, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TokenSigner {
    /// A signer whose key is derived from `secret`.
    pub(crate) fn new(secret: &[u8]) -> Self {
        let mut mac = hmac(b"bk-plugin-framework-rust callback token v1");
        mac.update(secret);
        let mut key = [0u8; 32];
        key.copy_from_slice(&mac.finalize().into_bytes());
        Self { key }
    }

    /// A token for `(trace_id, callback_id)` valid until `expires_at` (Unix seconds).
    pub(crate) fn sign(
        &self,
        trace_id: &str,
        callback_id: &str,
        expires_at: u32,
    ) -> Result<String, TokenError> {
        let mut body = Vec::with_capacity(TOKEN_LEN);
        body.push(VERSION);
        body.extend_from_slice(&hex16(trace_id)?);
        body.extend_from_slice(&hex16(callback_id)?);
        body.extend_from_slice(&expires_at.to_be_bytes());
        let mut mac = hmac(&self.key);
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes()[..MAC_LEN]);
        Ok(URL_SAFE_NO_PAD.encode(body))
    }

    /// The claims of a token that is ours, untampered and not expired at `now` (Unix seconds).
    pub(crate) fn verify(&self, token: &str, now: u64) -> Result<CallbackClaims, TokenError> {
        if token.len() > 128 {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('/'))
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() != TOKEN_LEN || bytes[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let (body, tag) = bytes.split_at(BODY_LEN);
        let mut mac = hmac(&self.key);
        mac.update(body);
        mac.verify_truncated_left(tag)
            .map_err(|_| TokenError::BadSignature)?;
        let mut expiry = [0u8; 4];
        expiry.copy_from_slice(&body[33..37]);
        let expires_at = u32::from_be_bytes(expiry);
        if u64::from(expires_at) < now {
            return Err(TokenError::Expired);
        }
        Ok(CallbackClaims {
            trace_id: to_hex(&body[1..17]),
            callback_id: to_hex(&body[17..33]),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "0123456789abcdef0123456789abcdef";
    const CALLBACK: &str = "fedcba9876543210fedcba9876543210";

    /// A signer with the secret `secret` and its token for TRACE and CALLBACK, valid until
    /// 2_000_000_000.
    fn signed() -> (TokenSigner, String) {
        let signer = TokenSigner::new(b"secret");
        let token = signer
            .sign(TRACE, CALLBACK, 2_000_000_000)
            .unwrap_or_default();
        (signer, token)
    }

    #[test]
    fn a_signed_token_verifies_to_its_ids_and_is_url_safe() {
        let (signer, token) = signed();
        assert_eq!(token.len(), 71);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let claims = signer.verify(&token, 1_900_000_000);
        assert_eq!(
            claims,
            Ok(CallbackClaims {
                trace_id: TRACE.into(),
                callback_id: CALLBACK.into(),
                expires_at: 2_000_000_000
            })
        );
    }

    #[test]
    fn forged_tampered_expired_and_garbage_tokens_are_refused() {
        let (signer, token) = signed();
        let other = TokenSigner::new(b"another secret");
        assert_eq!(other.verify(&token, 0), Err(TokenError::BadSignature));
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap_or_default();
        bytes[5] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(signer.verify(&tampered, 0), Err(TokenError::BadSignature));
        assert_eq!(
            signer.verify(&token, 2_000_000_001),
            Err(TokenError::Expired)
        );
        for garbage in ["", "abc", "!!!!", &"A".repeat(71), &"A".repeat(500)] {
            assert!(signer.verify(garbage, 0).is_err(), "{garbage} accepted");
        }
    }
}

#[cfg(test)]
mod fuzz {
    //! Fuzzing callback-token parsing: garbage and mutated tokens are never accepted.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_strings_are_never_valid_tokens(text in "\\PC{0,120}") {
            let signer = TokenSigner::new(b"fuzz");
            prop_assert!(signer.verify(&text, 0).is_err());
        }

        #[test]
        fn any_single_byte_change_to_a_token_is_refused(position in 0usize..53, flip in 1u8..=255) {
            let signer = TokenSigner::new(b"fuzz");
            let token = signer
                .sign("0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210", u32::MAX)
                .unwrap_or_default();
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap_or_default();
            bytes[position] ^= flip;
            let mutated = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert!(signer.verify(&mutated, 0).is_err());
        }
    }
}
