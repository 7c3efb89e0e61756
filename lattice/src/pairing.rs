//! Keys shared by each pair of hosts, so that an invocation is
//! authenticated by a MAC (well under a microsecond) instead of an ed25519
//! signature and its verification (about 100 µs together on this class of
//! machine: most of a lattice call's CPU).
//!
//! Each host makes a fresh X25519 key at start (its *exchange key*) and
//! publishes the public half in its host record, signed with its ed25519
//! host key so that no one else can claim it ([`Exchange`]). Two hosts
//! derive the same secret by Diffie-Hellman, once per pair, and from it
//! one MAC key per direction ([`PeerKey`]). A MAC made with the key of
//! pair (A, B) convinces B that A made it — only A and B hold that key —
//! so origin authenticity holds as it did with signatures, and a host
//! cannot speak for another.

use curve25519_dalek::montgomery::MontgomeryPoint;
use nkeys::KeyPair;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The length of a MAC tag as sent: HMAC-SHA256 truncated to 128 bits
/// (RFC 2104 §5 allows truncation to half the output or more).
pub const TAG_LEN: usize = 16;

/// One MAC tag.
pub type Tag = [u8; TAG_LEN];

/// What a host publishes of its exchange key: the X25519 public key and
/// the host's ed25519 signature over it (with the lattice and host id, so
/// it cannot be replayed elsewhere), both base64url without padding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// The X25519 public key.
    pub key: String,
    /// The host key's signature over [`attested_bytes`].
    pub sig: String,
}

fn attested_bytes(lattice: &str, host: &str, key: &str) -> Vec<u8> {
    format!("wascc-exchange-v1\n{lattice}\n{host}\n{key}").into_bytes()
}

/// A host's own exchange key: the secret half stays in memory.
pub struct ExchangeKey {
    secret: [u8; 32],
    published: Exchange,
}

impl ExchangeKey {
    /// A fresh exchange key for host `host` (with its seed) in `lattice`.
    pub fn generate(host: &KeyPair, lattice: &str) -> ExchangeKey {
        let mut secret = [0u8; 32];
        // The operating system's generator does not fail on Linux once
        // booted; a zero key would only make every pair fall back to
        // signatures (its DH output is refused below).
        if getrandom::fill(&mut secret).is_err() {
            tracing::error!("no randomness for the exchange key: invocations will be signed");
        }
        let public = MontgomeryPoint::mul_base_clamped(secret);
        let key = data_encoding::BASE64URL_NOPAD.encode(public.as_bytes());
        let sig = host
            .sign(&attested_bytes(lattice, &host.public_key(), &key))
            .map(|s| data_encoding::BASE64URL_NOPAD.encode(&s))
            .unwrap_or_default();
        ExchangeKey {
            secret,
            published: Exchange { key, sig },
        }
    }

    /// What goes into the host record.
    pub fn published(&self) -> &Exchange {
        &self.published
    }

    /// The keys shared with host `peer` (`me` is this host's id), if its
    /// published exchange key is signed by it for `lattice` and usable.
    pub fn pair(
        &self,
        lattice: &str,
        me: &str,
        peer: &str,
        theirs: &Exchange,
    ) -> Result<PeerKey, String> {
        let host = KeyPair::from_public_key(peer)
            .ok()
            .filter(|_| peer.starts_with('N'))
            .ok_or_else(|| format!("{peer:?} is not a host key"))?;
        let sig = data_encoding::BASE64URL_NOPAD
            .decode(theirs.sig.as_bytes())
            .map_err(|_| "its exchange key's signature is not base64url".to_string())?;
        host.verify(&attested_bytes(lattice, peer, &theirs.key), &sig)
            .map_err(|_| "its exchange key is not signed by it".to_string())?;
        let public: [u8; 32] = data_encoding::BASE64URL_NOPAD
            .decode(theirs.key.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| "its exchange key is not 32 bytes of base64url".to_string())?;
        let shared = MontgomeryPoint(public).mul_clamped(self.secret);
        // A low-order point gives a secret anyone can compute.
        if shared.as_bytes().iter().all(|b| *b == 0) {
            return Err("its exchange key is a low-order point".into());
        }
        let direction = |from: &str, to: &str| {
            let root = hmac::Key::new(hmac::HMAC_SHA256, shared.as_bytes());
            let derived = hmac::sign(
                &root,
                format!("wascc-pair-v1\n{lattice}\n{from}\n{to}").as_bytes(),
            );
            hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
        };
        Ok(PeerKey {
            host: peer.to_string(),
            exchange: theirs.key.clone(),
            send: direction(me, peer),
            recv: direction(peer, me),
        })
    }
}

/// The MAC keys this host shares with one other host.
pub struct PeerKey {
    host: String,
    /// The peer's exchange key the keys were made with.
    exchange: String,
    send: hmac::Key,
    recv: hmac::Key,
}

impl std::fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerKey").field("host", &self.host).finish()
    }
}

impl PeerKey {
    /// The peer's host id.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether these keys were made with exchange key `key` of the peer.
    pub fn made_with(&self, key: &str) -> bool {
        self.exchange == key
    }

    /// The tag of `bytes` sent to the peer.
    pub fn tag(&self, bytes: &[u8]) -> Tag {
        truncate(hmac::sign(&self.send, bytes))
    }

    /// Whether one of `tags` is the peer's tag of `bytes` (compared in
    /// constant time: a forger learns nothing from how long it took).
    pub fn check(&self, bytes: &[u8], tags: &[Tag]) -> bool {
        let expected = truncate(hmac::sign(&self.recv, bytes));
        tags.iter().fold(false, |found, t| {
            let diff = t
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found | (diff == 0)
        })
    }
}

fn truncate(tag: hmac::Tag) -> Tag {
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&tag.as_ref()[..TAG_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_hosts_derive_matching_keys_and_a_third_cannot() {
        let (ka, kb, kc) = (
            KeyPair::new_server(),
            KeyPair::new_server(),
            KeyPair::new_server(),
        );
        let (a, b, c) = (ka.public_key(), kb.public_key(), kc.public_key());
        let xa = ExchangeKey::generate(&ka, "l");
        let xb = ExchangeKey::generate(&kb, "l");
        let xc = ExchangeKey::generate(&kc, "l");
        let a_to_b = xa.pair("l", &a, &b, xb.published()).unwrap();
        let b_from_a = xb.pair("l", &b, &a, xa.published()).unwrap();
        let c_from_a = xc.pair("l", &c, &a, xa.published()).unwrap();
        let tag = a_to_b.tag(b"invocation");
        assert!(b_from_a.check(b"invocation", &[tag]));
        assert!(b_from_a.check(b"invocation", &[[0; TAG_LEN], tag]));
        assert!(!b_from_a.check(b"invocatioN", &[tag]), "altered");
        assert!(!c_from_a.check(b"invocation", &[tag]), "not C's key");
        // The reverse direction has its own key: a tag cannot be reflected.
        let b_to_a = xb.pair("l", &b, &a, xa.published()).unwrap();
        assert!(!b_from_a.check(b"invocation", &[b_to_a.tag(b"invocation")]));
        assert!(!b_from_a.check(b"invocation", &[]));
    }

    #[test]
    fn an_exchange_key_is_refused_unless_its_host_signed_it_for_this_lattice() {
        let (ka, kb) = (KeyPair::new_server(), KeyPair::new_server());
        let (a, b) = (ka.public_key(), kb.public_key());
        let xa = ExchangeKey::generate(&ka, "l");
        let xb = ExchangeKey::generate(&kb, "l");
        // B's key claimed by A.
        let e = xa.pair("l", &b, &a, xb.published()).unwrap_err();
        assert!(e.contains("not signed by it"), "{e}");
        // Signed for another lattice.
        let e = xa.pair("m", &a, &b, xb.published()).unwrap_err();
        assert!(e.contains("not signed by it"), "{e}");
        // A key swapped under a valid signature.
        let mut swapped = xb.published().clone();
        swapped.key = xa.published().key.clone();
        let e = xa.pair("l", &a, &b, &swapped).unwrap_err();
        assert!(e.contains("not signed by it"), "{e}");
        let e = xa
            .pair("l", &a, &KeyPair::new_module().public_key(), xb.published())
            .unwrap_err();
        assert!(e.contains("not a host key"), "{e}");
        // A low-order point, signed by its host.
        let zero = data_encoding::BASE64URL_NOPAD.encode(&[0u8; 32]);
        let sig = kb.sign(&attested_bytes("l", &b, &zero)).unwrap();
        let low = Exchange {
            key: zero,
            sig: data_encoding::BASE64URL_NOPAD.encode(&sig),
        };
        let e = xa.pair("l", &a, &b, &low).unwrap_err();
        assert!(e.contains("low-order"), "{e}");
    }
}
