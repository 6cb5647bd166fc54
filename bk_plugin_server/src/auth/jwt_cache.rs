//! A bounded cache of gateway JWTs that already passed verification, so a token the gateway
//! sends again is not RSA-verified again.
//!
//! Keyed by the SHA-256 of the token bytes (the raw token is never a key). An entry holds the
//! verified caller, the token's `exp` and `nbf`, and the generation of the public key that
//! verified it. A lookup hits only while `now < exp` (the cache never stretches a token's life,
//! not even into the leeway that verification grants after `exp`; from `exp` on, every request
//! is verified in full again), only while `nbf` allows it, and only for the current key
//! generation. Only verified tokens are ever inserted: nothing is cached for a refused token.
//!
//! Bounded by `capacity` entries. When a new token finds the cache full, expired entries are
//! dropped first; if it is still full, the quarter of entries that expire soonest (ties: the
//! oldest inserted) are evicted, so the cost of making room is O(capacity) once per
//! `capacity / 4` inserts.

use std::collections::HashMap;

/// The claims a verified token carries that the cache can answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedClaims {
    /// The verified calling app.
    pub(crate) app_code: Option<String>,
    /// The verified user.
    pub(crate) username: Option<String>,
    /// `exp`, seconds since the epoch.
    pub(crate) exp: u64,
    /// `nbf`, seconds since the epoch, when the token has one.
    pub(crate) nbf: Option<u64>,
}

#[derive(Debug)]
struct Entry {
    claims: VerifiedClaims,
    generation: u64,
    seq: u64,
}

/// The cache proper; the verifier holds it behind a mutex.
#[derive(Debug)]
pub(crate) struct TokenCache {
    map: HashMap<[u8; 32], Entry>,
    capacity: usize,
    generation: u64,
    seq: u64,
    leeway: u64,
}

impl TokenCache {
    /// An empty cache for at most `capacity` tokens (0 caches nothing), for key `generation`;
    /// `leeway` is the `nbf` leeway verification grants.
    pub(crate) fn new(capacity: usize, generation: u64, leeway: u64) -> Self {
        Self {
            map: HashMap::with_capacity(capacity.min(1024)),
            capacity,
            generation,
            seq: 0,
            leeway,
        }
    }

    /// The verified claims for the token hashed to `digest`, if it was verified with the key of
    /// `generation` and is still before its `exp` at `now`. A stale entry is removed.
    pub(crate) fn get(
        &mut self,
        digest: &[u8; 32],
        generation: u64,
        now: u64,
    ) -> Option<VerifiedClaims> {
        let entry = self.map.get(digest)?;
        let nbf_ok = entry
            .claims
            .nbf
            .is_none_or(|nbf| nbf <= now.saturating_add(self.leeway));
        if entry.generation == generation && generation == self.generation && now < entry.claims.exp
        {
            return nbf_ok.then(|| entry.claims.clone());
        }
        self.map.remove(digest);
        None
    }

    /// Remembers a token verified with the key of `generation`. Ignored when the key changed
    /// since (a verification racing a key swap), when the token is at or past `exp`, or when
    /// the cache is disabled.
    pub(crate) fn insert(
        &mut self,
        digest: [u8; 32],
        claims: VerifiedClaims,
        generation: u64,
        now: u64,
    ) {
        if self.capacity == 0 || generation != self.generation || now >= claims.exp {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(&digest) {
            self.make_room(now);
        }
        self.seq += 1;
        let entry = Entry {
            claims,
            generation,
            seq: self.seq,
        };
        self.map.insert(digest, entry);
    }

    /// Forgets every token and accepts only tokens verified with the key of `generation` from
    /// now on. Called when the gateway's public key changes.
    pub(crate) fn reset(&mut self, generation: u64) {
        self.map.clear();
        self.generation = generation;
    }

    /// How many tokens are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    fn make_room(&mut self, now: u64) {
        self.map.retain(|_, e| now < e.claims.exp);
        if self.map.len() < self.capacity {
            return;
        }
        let keep = self.capacity - self.capacity / 4;
        let evict = self.map.len() - keep.min(self.map.len());
        if evict == 0 {
            return;
        }
        let mut order: Vec<(u64, u64)> = self.map.values().map(|e| (e.claims.exp, e.seq)).collect();
        let (_, cutoff, _) = order.select_nth_unstable(evict - 1);
        let cutoff = *cutoff;
        // (exp, seq) pairs are unique, so exactly `evict` entries are at or below the cutoff.
        self.map.retain(|_, e| (e.claims.exp, e.seq) > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> VerifiedClaims {
        VerifiedClaims {
            app_code: Some("bk_sops".into()),
            username: Some("admin".into()),
            exp,
            nbf: None,
        }
    }

    fn digest(n: u32) -> [u8; 32] {
        let mut d = [0; 32];
        d[..4].copy_from_slice(&n.to_be_bytes());
        d
    }

    #[test]
    fn an_entry_answers_until_its_exp_and_is_dropped_at_exp() {
        let mut cache = TokenCache::new(10, 1, 30);
        cache.insert(digest(1), claims(100), 1, 50);
        assert_eq!(cache.get(&digest(1), 1, 99), Some(claims(100)));
        assert_eq!(cache.get(&digest(1), 1, 100), None);
        assert_eq!(cache.len(), 0, "the expired entry is removed");
    }

    #[test]
    fn a_token_at_or_past_exp_is_never_inserted() {
        let mut cache = TokenCache::new(10, 1, 30);
        cache.insert(digest(1), claims(100), 1, 100);
        cache.insert(digest(2), claims(100), 1, 120);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn entries_of_an_old_key_generation_are_never_answered_nor_inserted() {
        let mut cache = TokenCache::new(10, 1, 30);
        cache.insert(digest(1), claims(100), 1, 50);
        cache.reset(2);
        assert_eq!(cache.get(&digest(1), 2, 60), None);
        cache.insert(digest(2), claims(100), 1, 60);
        assert_eq!(
            cache.len(),
            0,
            "a verification with the old key is not kept"
        );
        cache.insert(digest(3), claims(100), 2, 60);
        assert_eq!(cache.get(&digest(3), 1, 60), None, "asked with the old key");
    }

    #[test]
    fn a_not_yet_valid_entry_is_not_answered() {
        let mut cache = TokenCache::new(10, 1, 30);
        let mut c = claims(1000);
        c.nbf = Some(200);
        cache.insert(digest(1), c.clone(), 1, 175);
        assert_eq!(cache.get(&digest(1), 1, 169), None, "nbf - leeway > now");
        cache.insert(digest(1), c.clone(), 1, 175);
        assert_eq!(cache.get(&digest(1), 1, 170), Some(c));
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_then_the_soonest_to_expire() {
        let mut cache = TokenCache::new(8, 1, 30);
        for n in 0..8 {
            cache.insert(digest(n), claims(100 + u64::from(n)), 1, 10);
        }
        assert_eq!(cache.len(), 8);
        // At 103 the entries with exp 100..=103 are expired: making room drops just those.
        cache.insert(digest(100), claims(500), 1, 103);
        assert_eq!(cache.len(), 5);
        for n in 4..8 {
            assert!(cache.get(&digest(n), 1, 103).is_some(), "entry {n} kept");
        }
        for n in 200..203 {
            cache.insert(digest(n), claims(400), 1, 103);
        }
        assert_eq!(cache.len(), 8);
        // Full of live tokens: the 2 (a quarter) that expire soonest go.
        cache.insert(digest(300), claims(600), 1, 103);
        assert_eq!(cache.len(), 7);
        assert!(cache.get(&digest(4), 1, 103).is_none());
        assert!(cache.get(&digest(5), 1, 103).is_none());
        assert!(cache.get(&digest(6), 1, 103).is_some());
        assert!(cache.get(&digest(300), 1, 103).is_some());
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let mut cache = TokenCache::new(100, 1, 30);
        for n in 0..10_000 {
            cache.insert(digest(n), claims(1_000), 1, 10);
            assert!(cache.len() <= 100);
        }
        let mut off = TokenCache::new(0, 1, 30);
        off.insert(digest(1), claims(1_000), 1, 10);
        assert_eq!(off.len(), 0, "capacity 0 caches nothing");
    }
}
