//! argon2 checks in memory a thread keeps: each password-hashing thread owns one set of
//! argon2 blocks (19 MiB with our parameters) and reuses it for every check.
//!
//! Why: letting the argon2 crate allocate 19 MiB per check and free it afterwards left that
//! memory in the threads' malloc arenas, and not once per thread: freed 19 MiB regions were
//! split by later small allocations and the next check took fresh ones. Measured on the debug
//! binary: 8 failed logins, RSS 19 -> 176 MiB (four arenas holding 19-58 MiB each); successful
//! logins of 40 distinct accounts, 20 -> 255 MiB, kept at rest. With one set per thread it is
//! the threads' blocks and nothing more (see `verify`'s pool: two threads).
//!
//! A thread keeps its set only while checks are waiting: when its queue is empty it calls
//! [`Blocks::release`], so a server at rest holds no argon2 memory (it held 2 x 19 MiB, most of
//! its memory at rest). A set is one allocation far above the allocator's threshold for
//! mapping memory of its own, so freeing it gives the memory back to the system at once.
//! Taking a new set costs ~1.7 ms (mapping and zeroing 19 MiB) on a check of ~18 ms, paid only
//! by a check that finds the queue empty; under a login storm the set is reused.

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// The most memory a stored hash may ask for (blocks of 1 KiB): 256 MiB. A larger `m=` in a
/// hash (imported, or damaged) is refused rather than allocated.
const MAX_BLOCKS: usize = 256 * 1024;

/// One thread's argon2 memory, grown to the largest hash it has checked (bounded above).
#[derive(Default)]
pub(crate) struct Blocks(Vec<Block>);

impl Blocks {
    /// Checks `password` against an argon2 PHC string (`$argon2id$`, `$argon2i$`, `$argon2d$`)
    /// in this memory. `None`: not an argon2 PHC string (the caller checks it another way).
    /// A malformed argon2 hash, or one asking for more than [`MAX_BLOCKS`], never matches.
    pub(crate) fn verify(&mut self, phc: &str, password: &[u8]) -> Option<bool> {
        let hash = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
        Some(
            self.verify_parsed(algorithm, &hash, password)
                .unwrap_or(false),
        )
    }

    /// Gives this thread's argon2 memory back (the next check takes a new set).
    pub(crate) fn release(&mut self) {
        self.0 = Vec::new();
    }

    /// Whether this thread holds argon2 memory.
    pub(crate) fn held(&self) -> bool {
        self.0.capacity() > 0
    }

    fn verify_parsed(
        &mut self,
        algorithm: Algorithm,
        hash: &PasswordHash<'_>,
        password: &[u8],
    ) -> Option<bool> {
        let version = match hash.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(hash).ok()?;
        let expected = hash.hash?;
        let mut salt = [0u8; 64];
        let salt = hash.salt?.decode_b64(&mut salt).ok()?;
        let need = params.block_count();
        if need > MAX_BLOCKS {
            return None;
        }
        if self.0.len() < need {
            // One allocation of the size needed, not a growth of the old one.
            self.0 = Vec::new();
            self.0.resize(need, Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, &mut out, &mut self.0[..need])
            .ok()?;
        // `Output`'s equality is constant-time.
        Some(Output::new(&out).ok()? == expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_crate() {
        let mut b = Blocks::default();
        let phc = crate::hash_password("correct horse");
        assert_eq!(b.verify(&phc, b"correct horse"), Some(true));
        assert_eq!(b.verify(&phc, b"wrong horse"), Some(false));
        assert_eq!(b.0.len(), 19 * 1024, "one set of blocks, reused");
        assert_eq!(b.verify(&phc, b"correct horse"), Some(true));
        assert_eq!(b.0.len(), 19 * 1024);
        // argon2i and other parameters, from the crate's own hasher.
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(4096, 3, 2, Some(24)).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert_eq!(b.verify(&other, b"pw"), Some(true));
        assert_eq!(b.verify(&other, b"pw2"), Some(false));
        // Not argon2: not ours to judge. Damaged or absurd argon2: never matches.
        assert_eq!(b.verify("{SSHA256}abc", b"pw"), None);
        // (Unparsable: left to the caller, whose check fails it too.)
        assert_ne!(
            b.verify("$argon2id$v=19$m=19456,t=2,p=1$bad", b"pw"),
            Some(true)
        );
        let huge = phc.replace("m=19456", "m=4000000");
        assert_eq!(b.verify(&huge, b"correct horse"), Some(false));
        assert_eq!(b.0.len(), 19 * 1024, "nothing allocated for the absurd one");
        b.release();
        assert!(!b.held());
        assert_eq!(b.0.capacity(), 0);
        assert_eq!(b.verify(&phc, b"correct horse"), Some(true));
        assert!(b.held());
        assert_eq!(b.0.capacity() * Block::SIZE, 19 << 20);
    }
}
