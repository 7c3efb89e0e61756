//! Sealed invocations between hosts: every invocation a host sends over the
//! lattice carries a seal — the sending host's key, a timestamp, a sequence
//! number, the call depth, and an authenticator over the lattice, subject,
//! operation, those and the SHA-256 of the payload. The authenticator is
//! one MAC tag per host that may receive it, keyed per pair of hosts
//! ([`crate::pairing`]), or, when the sender cannot key one for every such
//! host, an ed25519 signature by the sending host. The receiver refuses a
//! seal that is forged (no tag or signature of the origin, not a host key,
//! untrusted host), altered
//! (any signed part changed), stale (outside the allowed clock skew, or
//! sealed before the receiver started: it cannot know what it saw before)
//! or replayed (a sequence number already seen, kept per sending host in a
//! sliding window as IPsec does, so memory stays bounded by the number of
//! hosts, not the rate).
//!
//! The payload itself travels as it is (no copy into an envelope); the seal
//! travels beside it (NATS headers).

use crate::limits::{MAX_CLOCK_SKEW, REPLAY_WINDOW};
use crate::pairing::{PeerKey, Tag};
use nkeys::KeyPair;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The seal of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// The sending host's server key (`N…`).
    pub origin: String,
    /// When it was sealed, milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// Increasing per sending host (restarting from 1 at each start: a stable host key
    /// is accepted again only for seals made after the receiver started).
    pub seq: u64,
    /// The invocation's call depth (signed with it).
    pub depth: u32,
    /// MAC tags, one per host it may reach (see [`crate::pairing`]).
    pub tags: Vec<Tag>,
    /// ed25519 signature, base64url without padding (empty: none).
    pub signature: String,
}

/// What an invocation is about: the parts the seal covers besides its own.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// The lattice name.
    pub lattice: &'a str,
    /// The NATS subject it is sent on (names the target).
    pub subject: &'a str,
    /// The operation.
    pub operation: &'a str,
    /// The payload.
    pub payload: &'a [u8],
    /// How deep in a chain of actor-to-actor calls it is (the receiver
    /// refuses to go past its limit, so a cycle across hosts ends).
    pub depth: u32,
}

/// Why a sealed invocation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The origin is not a host key.
    BadOrigin(String),
    /// The origin is a host key the receiver does not trust.
    UntrustedOrigin(String),
    /// The signature does not match (forged or altered).
    BadSignature {
        /// The claimed origin.
        origin: String,
    },
    /// Tagged, but no tag is this host's from the origin, and not signed:
    /// forged or altered, or the sender's view of who serves the subject
    /// (or of this host's exchange key) is behind — the sender signs it
    /// and sends it again.
    NotForThisHost {
        /// The claimed origin.
        origin: String,
    },
    /// The timestamp is further from the receiver's clock than allowed.
    Stale {
        /// The seal's timestamp.
        timestamp_ms: u64,
        /// The receiver's clock.
        now_ms: u64,
    },
    /// Sealed before this receiver started.
    BeforeStart {
        /// The seal's timestamp.
        timestamp_ms: u64,
        /// When the receiver started.
        started_ms: u64,
    },
    /// The sequence number was seen before, or is too far behind the
    /// newest seen from its host to tell.
    Replayed {
        /// The sequence number.
        seq: u64,
        /// The claimed origin.
        origin: String,
    },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::BadOrigin(o) => write!(f, "origin {o:?} is not a host key"),
            Refused::UntrustedOrigin(o) => write!(f, "origin host {o} is not trusted"),
            Refused::BadSignature { origin } => write!(
                f,
                "signature of host {origin} does not match the invocation (forged or altered)"
            ),
            Refused::NotForThisHost { origin } => write!(
                f,
                "no MAC tag from host {origin} matches for this host (forged or altered, or keyed for other hosts) and it is not signed"
            ),
            Refused::Stale {
                timestamp_ms,
                now_ms,
            } => write!(
                f,
                "sealed at {timestamp_ms} ms, {} ms from this host's clock ({now_ms} ms); at most {} ms allowed",
                timestamp_ms.abs_diff(*now_ms),
                MAX_CLOCK_SKEW.as_millis()
            ),
            Refused::BeforeStart {
                timestamp_ms,
                started_ms,
            } => write!(
                f,
                "sealed at {timestamp_ms} ms, before this host started ({started_ms} ms)"
            ),
            Refused::Replayed { seq, origin } => write!(
                f,
                "invocation {seq} from host {origin} was already received or is too old (replay)"
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// The bytes a seal signs: `wascc-invocation-v1`, the lattice, subject,
/// operation, depth, origin, timestamp, sequence number and the payload's
/// SHA-256 in upper-case hex, one per line.
// PERFORMANCE_CRITICAL_PATH: twice per call across hosts (sender, receiver);
// one allocation, sized up front, no formatting machinery for the strings.
fn signed_bytes(inv: &Invocation<'_>, origin: &str, timestamp_ms: u64, seq: u64) -> Vec<u8> {
    let strings = [inv.lattice, inv.subject, inv.operation];
    let mut out = lines_buffer(&strings, origin.len() + 3 * 20);
    out.extend_from_slice(b"wascc-invocation-v1\n");
    for s in strings {
        push_line(&mut out, s.as_bytes());
    }
    push_number(&mut out, u64::from(inv.depth));
    push_line(&mut out, origin.as_bytes());
    push_number(&mut out, timestamp_ms);
    push_number(&mut out, seq);
    push_hash(&mut out, inv.payload);
    out
}

/// A buffer for lines of `strings` and `more` bytes besides, with room for
/// a header line and a hash.
fn lines_buffer(strings: &[&str], more: usize) -> Vec<u8> {
    let len: usize = strings.iter().map(|s| s.len() + 1).sum();
    Vec::with_capacity(len + more + 32 + 2 * HASH_HEX_LEN)
}

/// Upper-case hex of a SHA-256.
const HASH_HEX_LEN: usize = 64;

fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.push(b'\n');
}

fn push_number(out: &mut Vec<u8>, n: u64) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = writeln!(out, "{n}");
}

/// The SHA-256 of `payload` in upper-case hex, the last line (no newline).
fn push_hash(out: &mut Vec<u8>, payload: &[u8]) {
    let mut hex = [0u8; HASH_HEX_LEN];
    data_encoding::HEXUPPER.encode_mut(&Sha256::digest(payload), &mut hex);
    out.extend_from_slice(&hex);
}

/// Which invocation a reply answers, and who answers it: what a reply's
/// seal covers besides the reply itself.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The lattice name.
    pub lattice: &'a str,
    /// The invocation's subject.
    pub subject: &'a str,
    /// The invoking host.
    pub origin: &'a str,
    /// The invocation's sequence number (from that host).
    pub seq: u64,
    /// The answering host.
    pub responder: &'a str,
}

/// The bytes a reply's seal covers: the invocation it answers, the
/// answering host, whether it is an error, and the SHA-256 of its payload
/// (or error message). Bound to one invocation: a reply cannot be replayed
/// as the answer to another.
// PERFORMANCE_CRITICAL_PATH: twice per call across hosts, as signed_bytes.
pub fn reply_bytes(answer: &Answer<'_>, error: bool, payload: &[u8]) -> Vec<u8> {
    let strings = [answer.lattice, answer.subject, answer.origin];
    let mut out = lines_buffer(&strings, answer.responder.len() + 20 + 6);
    out.extend_from_slice(b"wascc-reply-v1\n");
    for s in strings {
        push_line(&mut out, s.as_bytes());
    }
    push_number(&mut out, answer.seq);
    push_line(&mut out, answer.responder.as_bytes());
    push_line(&mut out, if error { b"error" } else { b"ok" });
    push_hash(&mut out, payload);
    out
}

/// Whether `signature` (base64url) is host `host`'s ed25519 signature of
/// `bytes`.
pub fn signed_by(host: &str, bytes: &[u8], signature: &str) -> bool {
    let Ok(key) = KeyPair::from_public_key(host) else {
        return false;
    };
    let Ok(sig) = data_encoding::BASE64URL_NOPAD.decode(signature.as_bytes()) else {
        return false;
    };
    host.starts_with('N') && key.verify(bytes, &sig).is_ok()
}

/// Seals a host's outgoing invocations. Shareable between threads.
pub struct Sealer {
    key: KeyPair,
    origin: String,
    next: AtomicU64,
}

impl Sealer {
    /// A sealer for host `key` (a server key pair with its seed).
    pub fn new(key: KeyPair) -> Self {
        Sealer {
            origin: key.public_key(),
            key,
            next: AtomicU64::new(1),
        }
    }

    /// The host's public key.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The host's ed25519 signature of `bytes`, base64url (empty for a
    /// key without its seed, which every receiver refuses).
    pub fn sign(&self, bytes: &[u8]) -> String {
        self.key
            .sign(bytes)
            .map(|s| data_encoding::BASE64URL_NOPAD.encode(&s))
            .unwrap_or_default()
    }

    /// Seals `inv` at `now_ms` with a signature (any host can check it).
    pub fn seal(&self, inv: &Invocation<'_>, now_ms: u64) -> Seal {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let signature = self.sign(&signed_bytes(inv, &self.origin, now_ms, seq));
        Seal {
            origin: self.origin.clone(),
            timestamp_ms: now_ms,
            seq,
            depth: inv.depth,
            tags: Vec::new(),
            signature,
        }
    }

    /// Seals `inv` at `now_ms` with a MAC tag for each of `peers` (only
    /// they can check it); with no peers, signs it.
    pub fn seal_for(&self, inv: &Invocation<'_>, now_ms: u64, peers: &[Arc<PeerKey>]) -> Seal {
        if peers.is_empty() {
            return self.seal(inv, now_ms);
        }
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let bytes = signed_bytes(inv, &self.origin, now_ms, seq);
        Seal {
            origin: self.origin.clone(),
            timestamp_ms: now_ms,
            seq,
            depth: inv.depth,
            tags: peers.iter().map(|p| p.tag(&bytes)).collect(),
            signature: String::new(),
        }
    }
}

/// Sequence numbers seen from one host: the newest, and a bitmap of the
/// [`REPLAY_WINDOW`] before it (bit `i`: newest − `i` was seen).
struct Window {
    newest: u64,
    bits: Vec<u64>,
}

impl Window {
    fn new() -> Self {
        Window {
            newest: 0,
            bits: vec![0; REPLAY_WINDOW / 64],
        }
    }

    fn bit(&self, back: u64) -> bool {
        let i = back as usize;
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, back: u64) {
        let i = back as usize;
        self.bits[i / 64] |= 1 << (i % 64);
    }

    fn shift(&mut self, by: u64) {
        if by as usize >= REPLAY_WINDOW {
            self.bits.iter_mut().for_each(|w| *w = 0);
            return;
        }
        let (words, rest) = ((by / 64) as usize, (by % 64) as u32);
        let n = self.bits.len();
        for i in (0..n).rev() {
            let from = i as isize - words as isize;
            let lo = if from >= 0 {
                self.bits[from as usize]
            } else {
                0
            };
            let lower = if rest > 0 && from >= 1 {
                self.bits[from as usize - 1] >> (64 - rest)
            } else {
                0
            };
            self.bits[i] = if rest > 0 { (lo << rest) | lower } else { lo };
        }
    }

    /// Records `seq`; false if it was seen or is older than the window.
    fn accept(&mut self, seq: u64) -> bool {
        if seq > self.newest {
            self.shift(seq - self.newest);
            self.newest = seq;
            self.set(0);
            return true;
        }
        let back = self.newest - seq;
        if back as usize >= REPLAY_WINDOW || self.bit(back) {
            return false;
        }
        self.set(back);
        true
    }
}

/// Checks seals on the receiving side and remembers sequence numbers to
/// refuse replays. One per receiving host; not shared between threads.
pub struct Verifier {
    /// Host keys allowed to invoke; empty: any host key.
    trusted: Vec<String>,
    started_ms: u64,
    windows: HashMap<String, Window>,
}

impl Verifier {
    /// A verifier started at `started_ms`, trusting `trusted` host keys
    /// (empty: any host key).
    pub fn new(trusted: Vec<String>, started_ms: u64) -> Self {
        Verifier {
            trusted,
            started_ms,
            windows: HashMap::new(),
        }
    }

    /// Forgets a host (it left the lattice).
    pub fn forget(&mut self, origin: &str) {
        self.windows.remove(origin);
    }

    /// Checks `seal` for `inv` at `now_ms`, its tags with `peer` (the
    /// keys this host shares with the origin, if known); on success its
    /// sequence number is remembered.
    pub fn verify(
        &mut self,
        seal: &Seal,
        inv: &Invocation<'_>,
        now_ms: u64,
        peer: Option<&PeerKey>,
    ) -> Result<(), Refused> {
        let origin = &seal.origin;
        if !origin.starts_with('N') {
            return Err(Refused::BadOrigin(origin.clone()));
        }
        if !self.trusted.is_empty() && !self.trusted.contains(origin) {
            return Err(Refused::UntrustedOrigin(origin.clone()));
        }
        let bytes = signed_bytes(inv, origin, seal.timestamp_ms, seal.seq);
        // Keys shared with a host were made from its checked host key.
        let tagged = !seal.tags.is_empty()
            && peer.is_some_and(|p| p.host() == origin.as_str() && p.check(&bytes, &seal.tags));
        if !tagged {
            self.check_signature(seal, &bytes)?;
        }
        self.check_fresh(seal, now_ms)
    }

    fn check_signature(&self, seal: &Seal, bytes: &[u8]) -> Result<(), Refused> {
        let origin = &seal.origin;
        // Decoding a public key decompresses a curve point: tens of µs,
        // only on this path.
        let key =
            KeyPair::from_public_key(origin).map_err(|_| Refused::BadOrigin(origin.clone()))?;
        if seal.signature.is_empty() && !seal.tags.is_empty() {
            return Err(Refused::NotForThisHost {
                origin: origin.clone(),
            });
        }
        let sig = data_encoding::BASE64URL_NOPAD
            .decode(seal.signature.as_bytes())
            .map_err(|_| Refused::BadSignature {
                origin: origin.clone(),
            })?;
        key.verify(bytes, &sig).map_err(|_| Refused::BadSignature {
            origin: origin.clone(),
        })
    }

    fn check_fresh(&mut self, seal: &Seal, now_ms: u64) -> Result<(), Refused> {
        let origin = &seal.origin;
        if seal.timestamp_ms.abs_diff(now_ms) > MAX_CLOCK_SKEW.as_millis() as u64 {
            return Err(Refused::Stale {
                timestamp_ms: seal.timestamp_ms,
                now_ms,
            });
        }
        if seal.timestamp_ms < self.started_ms {
            return Err(Refused::BeforeStart {
                timestamp_ms: seal.timestamp_ms,
                started_ms: self.started_ms,
            });
        }
        if !self
            .windows
            .entry(origin.clone())
            .or_insert_with(Window::new)
            .accept(seal.seq)
        {
            return Err(Refused::Replayed {
                seq: seal.seq,
                origin: origin.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(payload: &[u8]) -> Invocation<'_> {
        Invocation {
            lattice: "default",
            subject: "wasmbus.v1.default.actor.MABC",
            operation: "HandleRequest",
            payload,
            depth: 0,
        }
    }

    #[test]
    fn signed_and_reply_bytes_keep_their_layout() {
        // Hosts of one lattice must agree on these bytes to the byte (the
        // layout docs/LATTICE.md gives).
        let payload = b"hello";
        let hash = data_encoding::HEXUPPER.encode(&Sha256::digest(payload));
        let i = Invocation {
            depth: 3,
            ..inv(payload)
        };
        assert_eq!(
            String::from_utf8(signed_bytes(&i, "NORIGIN", 1_700_000_000_123, 42)).unwrap(),
            format!(
                "wascc-invocation-v1\ndefault\nwasmbus.v1.default.actor.MABC\nHandleRequest\n3\nNORIGIN\n1700000000123\n42\n{hash}"
            )
        );
        let answer = Answer {
            lattice: "default",
            subject: "wasmbus.v1.default.actor.MABC",
            origin: "NORIGIN",
            seq: 7,
            responder: "NRESPONDER",
        };
        for (error, kind) in [(false, "ok"), (true, "error")] {
            assert_eq!(
                String::from_utf8(reply_bytes(&answer, error, payload)).unwrap(),
                format!(
                    "wascc-reply-v1\ndefault\nwasmbus.v1.default.actor.MABC\nNORIGIN\n7\nNRESPONDER\n{kind}\n{hash}"
                )
            );
        }
    }

    #[test]
    fn a_sealed_invocation_verifies_once() {
        let sealer = Sealer::new(KeyPair::new_server());
        let mut v = Verifier::new(vec![], 1_000);
        let s = sealer.seal(&inv(b"hello"), 2_000);
        assert_eq!(v.verify(&s, &inv(b"hello"), 2_100, None), Ok(()));
        assert!(matches!(
            v.verify(&s, &inv(b"hello"), 2_200, None),
            Err(Refused::Replayed { seq: 1, .. })
        ));
    }

    #[test]
    fn altered_forged_stale_and_untrusted_seals_are_refused() {
        let sealer = Sealer::new(KeyPair::new_server());
        let mut v = Verifier::new(vec![], 0);
        let now = 10_000_000;
        let s = sealer.seal(&inv(b"hello"), now);
        // Altered payload, operation, subject or lattice.
        assert!(matches!(
            v.verify(&s, &inv(b"hellO"), now, None),
            Err(Refused::BadSignature { .. })
        ));
        let mut other = inv(b"hello");
        other.operation = "Other";
        assert!(matches!(
            v.verify(&s, &other, now, None),
            Err(Refused::BadSignature { .. })
        ));
        other = inv(b"hello");
        other.subject = "wasmbus.v1.default.actor.MXYZ";
        assert!(matches!(
            v.verify(&s, &other, now, None),
            Err(Refused::BadSignature { .. })
        ));
        other = inv(b"hello");
        other.lattice = "prod";
        assert!(matches!(
            v.verify(&s, &other, now, None),
            Err(Refused::BadSignature { .. })
        ));
        // Altered seal fields.
        let mut t = s.clone();
        t.seq += 1;
        assert!(matches!(
            v.verify(&t, &inv(b"hello"), now, None),
            Err(Refused::BadSignature { .. })
        ));
        t = s.clone();
        t.timestamp_ms += 1;
        assert!(matches!(
            v.verify(&t, &inv(b"hello"), now, None),
            Err(Refused::BadSignature { .. })
        ));
        // Forged: another host's key claims the origin.
        let forger = Sealer::new(KeyPair::new_server());
        let mut f = forger.seal(&inv(b"hello"), now);
        f.origin = s.origin.clone();
        assert!(matches!(
            v.verify(&f, &inv(b"hello"), now, None),
            Err(Refused::BadSignature { .. })
        ));
        t = s.clone();
        t.origin = KeyPair::new_module().public_key();
        assert!(matches!(
            v.verify(&t, &inv(b"hello"), now, None),
            Err(Refused::BadOrigin(_))
        ));
        // Stale: outside the skew either way.
        let skew = MAX_CLOCK_SKEW.as_millis() as u64;
        let late = sealer.seal(&inv(b"x"), now - skew - 1);
        assert!(matches!(
            v.verify(&late, &inv(b"x"), now, None),
            Err(Refused::Stale { .. })
        ));
        let early = sealer.seal(&inv(b"x"), now + skew + 1);
        assert!(matches!(
            v.verify(&early, &inv(b"x"), now, None),
            Err(Refused::Stale { .. })
        ));
        // Untrusted host.
        let mut strict = Verifier::new(vec![KeyPair::new_server().public_key()], 0);
        assert!(matches!(
            strict.verify(&s, &inv(b"hello"), now, None),
            Err(Refused::UntrustedOrigin(_))
        ));
        // None of that used up the genuine seal.
        assert_eq!(v.verify(&s, &inv(b"hello"), now, None), Ok(()));
        // Sealed before the receiver started.
        let mut restarted = Verifier::new(vec![], now + 1);
        assert!(matches!(
            restarted.verify(&s, &inv(b"hello"), now + 2, None),
            Err(Refused::BeforeStart { .. })
        ));
    }

    #[test]
    fn a_tagged_seal_passes_once_at_the_hosts_it_was_tagged_for_only() {
        use crate::pairing::ExchangeKey;
        let hosts: Vec<KeyPair> = (0..3).map(|_| KeyPair::new_server()).collect();
        let ids: Vec<String> = hosts.iter().map(|k| k.public_key()).collect();
        let x: Vec<ExchangeKey> = hosts
            .iter()
            .map(|k| ExchangeKey::generate(k, "default"))
            .collect();
        // Host 0 sends to hosts 1 and 2; host 2 receives it as a third
        // party would if the sender's view listed only host 1.
        let pair = |me: usize, peer: usize| {
            Arc::new(
                x[me]
                    .pair("default", &ids[me], &ids[peer], x[peer].published())
                    .unwrap(),
            )
        };
        let sealer = Sealer::new(KeyPair::from_seed(&hosts[0].seed().unwrap()).unwrap());
        let now = 10_000_000;
        let s = sealer.seal_for(&inv(b"hello"), now, &[pair(0, 1)]);
        assert!(s.signature.is_empty());
        assert_eq!(s.tags.len(), 1);
        let (at1, at2) = (pair(1, 0), pair(2, 0));
        let mut v1 = Verifier::new(vec![], 0);
        let mut v2 = Verifier::new(vec![], 0);
        assert!(matches!(
            v2.verify(&s, &inv(b"hello"), now, Some(&at2)),
            Err(Refused::NotForThisHost { .. })
        ));
        assert!(matches!(
            v1.verify(&s, &inv(b"hellO"), now, Some(&at1)),
            Err(Refused::NotForThisHost { .. })
        ));
        // The receiver checks at the depth the seal claims.
        let deeper = Invocation {
            depth: 1,
            ..inv(b"hello")
        };
        assert!(matches!(
            v1.verify(&s, &deeper, now, Some(&at1)),
            Err(Refused::NotForThisHost { .. })
        ));
        // Keys for another origin do not check it.
        assert!(matches!(
            v1.verify(&s, &inv(b"hello"), now, Some(&pair(1, 2))),
            Err(Refused::NotForThisHost { .. })
        ));
        // A forged signature beside the tags is checked, and refused.
        let mut f = s.clone();
        f.signature = sealer.seal(&inv(b"other"), now).signature;
        assert!(matches!(
            v2.verify(&f, &inv(b"hello"), now, Some(&at2)),
            Err(Refused::BadSignature { .. })
        ));
        assert_eq!(v1.verify(&s, &inv(b"hello"), now, Some(&at1)), Ok(()));
        assert!(matches!(
            v1.verify(&s, &inv(b"hello"), now, Some(&at1)),
            Err(Refused::Replayed { .. })
        ));
        // Tagged for both: both accept it.
        let both = sealer.seal_for(&inv(b"x"), now, &[pair(0, 1), pair(0, 2)]);
        assert_eq!(v1.verify(&both, &inv(b"x"), now, Some(&at1)), Ok(()));
        assert_eq!(v2.verify(&both, &inv(b"x"), now, Some(&at2)), Ok(()));
    }

    #[test]
    fn a_reply_seal_binds_the_invocation_and_the_answering_host() {
        let host = KeyPair::new_server();
        let sealer = Sealer::new(KeyPair::from_seed(&host.seed().unwrap()).unwrap());
        let answer = Answer {
            lattice: "default",
            subject: "wasmbus.v1.default.actor.MABC",
            origin: "NORIGIN",
            seq: 7,
            responder: sealer.origin(),
        };
        let bytes = reply_bytes(&answer, false, b"reply");
        let sig = sealer.sign(&bytes);
        assert!(signed_by(sealer.origin(), &bytes, &sig));
        // Another invocation, payload, kind or host: another text.
        for other in [
            reply_bytes(&Answer { seq: 8, ..answer }, false, b"reply"),
            reply_bytes(
                &Answer {
                    origin: "NOTHER",
                    ..answer
                },
                false,
                b"reply",
            ),
            reply_bytes(&answer, false, b"replY"),
            reply_bytes(&answer, true, b"reply"),
        ] {
            assert!(!signed_by(sealer.origin(), &other, &sig));
        }
        let impostor = KeyPair::new_server().public_key();
        assert!(!signed_by(&impostor, &bytes, &sig));
        assert!(!signed_by("not a key", &bytes, &sig));
        assert!(!signed_by(sealer.origin(), &bytes, "!!"));
    }

    #[test]
    fn out_of_order_sequence_numbers_pass_once_within_the_window() {
        let mut w = Window::new();
        for seq in [5, 3, 4, 1, 2, 70, 6, 200, 140] {
            assert!(w.accept(seq), "{seq}");
        }
        for seq in [5, 3, 1, 70, 200, 140, 6] {
            assert!(!w.accept(seq), "replayed {seq}");
        }
        assert!(w.accept(7));
        let far = 200 + REPLAY_WINDOW as u64 + 10;
        assert!(w.accept(far));
        assert!(!w.accept(199), "older than the window");
        assert!(w.accept(far - 1));
        assert!(!w.accept(far - 1));
        // Against a plain set, over a random order.
        let mut w = Window::new();
        let mut seen = std::collections::HashSet::new();
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let seq = 1 + (x >> 33) % 3000;
            let expect = seen.insert(seq);
            let newest = w.newest.max(seq);
            if newest - seq < REPLAY_WINDOW as u64 {
                assert_eq!(w.accept(seq), expect, "{seq}");
            } else {
                assert!(!w.accept(seq));
            }
        }
    }
}
