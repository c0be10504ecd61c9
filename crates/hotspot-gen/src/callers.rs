//! Who complains: mobile numbers, the hashed form some channels send
//! instead, ID-card numbers that agents paste into texts, and the memory of
//! recent callers that makes people call again.
//!
//! A caller is the distinct-caller identity of the contract: an exact
//! string. One customer always appears under the same string (a number or
//! its hash, decided once per customer), so "the same customer calls five
//! times" is one distinct caller however the calls arrive.

use rand::Rng;

/// Prefixes of mainland mobile numbers of the operator.
const PREFIXES: &[&[u8; 3]] = &[
    b"134", b"135", b"136", b"137", b"138", b"139", b"147", b"150", b"151", b"152", b"157", b"158",
    b"159", b"172", b"178", b"182", b"183", b"184", b"187", b"188", b"195", b"197", b"198",
];

/// An 11-digit mobile number, ASCII.
pub type Phone = [u8; 11];

/// A random mobile number.
pub fn phone(rng: &mut impl Rng) -> Phone {
    let mut p = [0u8; 11];
    p[..3].copy_from_slice(PREFIXES[rng.random_range(0..PREFIXES.len())]);
    let mut rest: u32 = rng.random_range(0..100_000_000);
    for i in (3..11).rev() {
        p[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    p
}

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash step.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The caller identity written in the `caller` field: a number or a
/// 32-hex-digit hash of it (some upstream systems pseudonymise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    buf: [u8; 32],
    len: u8,
    /// The customer's real number (for "回访号码" in texts).
    pub phone: Phone,
}

impl Caller {
    /// A caller shown as its number.
    pub fn plain(phone: Phone) -> Self {
        let mut buf = [0u8; 32];
        buf[..11].copy_from_slice(&phone);
        Caller {
            buf,
            len: 11,
            phone,
        }
    }

    /// A caller shown as an md5-like hash of its number.
    pub fn hashed(phone: Phone) -> Self {
        let v = phone.iter().fold(0u64, |a, &d| a * 10 + (d - b'0') as u64);
        let (h1, h2) = (
            mix64(v ^ 0x5EED_CA11),
            mix64(v.rotate_left(17) ^ 0xC0FF_EE00),
        );
        let mut buf = [0u8; 32];
        for (i, b) in buf.iter_mut().enumerate() {
            let word = if i < 16 { h1 } else { h2 };
            let nibble = (word >> ((i % 16) * 4)) & 0xF;
            *b = b"0123456789abcdef"[nibble as usize];
        }
        Caller {
            buf,
            len: 32,
            phone,
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and hex letters are ever written into `buf`.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

/// A new customer: a number, shown hashed with probability `hashed`.
pub fn new_caller(rng: &mut impl Rng, hashed: f64) -> Caller {
    let p = phone(rng);
    if rng.random_bool(hashed) {
        Caller::hashed(p)
    } else {
        Caller::plain(p)
    }
}

/// Appends an 18-character ID-card number of someone born 1950-2006 in the
/// area `area4` (four digits), with a correct ISO 7064 check character.
pub fn push_id_number(out: &mut String, rng: &mut impl Rng, area4: &str) {
    let mut id = [0u8; 18];
    id[..4].copy_from_slice(area4.as_bytes());
    let county: u32 = rng.random_range(1..30);
    id[4] = b'0' + (county / 10) as u8;
    id[5] = b'0' + (county % 10) as u8;
    let year: u32 = rng.random_range(1950..2007);
    let month: u32 = rng.random_range(1..13);
    let day: u32 = rng.random_range(1..29);
    let seq: u32 = rng.random_range(0..1000);
    let digits = [
        year / 1000,
        year / 100 % 10,
        year / 10 % 10,
        year % 10,
        month / 10,
        month % 10,
        day / 10,
        day % 10,
        seq / 100,
        seq / 10 % 10,
        seq % 10,
    ];
    for (i, d) in digits.iter().enumerate() {
        id[6 + i] = b'0' + *d as u8;
    }
    id[17] = id_check(&id[..17]);
    out.push_str(std::str::from_utf8(&id).unwrap_or(""));
}

/// The ISO 7064 MOD 11-2 check character of the first 17 digits of an ID
/// number.
pub fn id_check(first17: &[u8]) -> u8 {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .iter()
        .zip(W)
        .map(|(&c, w)| (c - b'0') as u32 * w)
        .sum();
    b"10X98765432"[(sum % 11) as usize]
}

/// Appends a number the way agents type it: plain, `188-6943-9335`,
/// `188 6943 9335`, or in full-width digits.
pub fn push_phone_styled(out: &mut String, rng: &mut impl Rng, p: &Phone) {
    let style: u32 = rng.random_range(0..20);
    for (i, &d) in p.iter().enumerate() {
        if (i == 3 || i == 7) && (style == 0 || style == 1) {
            out.push(if style == 0 { '-' } else { ' ' });
        }
        if style >= 17 {
            out.push(char::from_u32(0xFF10 + (d - b'0') as u32).unwrap_or('0'));
        } else {
            out.push(d as char);
        }
    }
}

/// Recent customers of each region, so some call again (same caller, maybe
/// a different channel), usually about the same thing.
#[derive(Debug)]
pub struct RecentCallers {
    ring: Vec<[(Caller, u32); RING]>,
    filled: Vec<usize>,
    next: Vec<usize>,
}

const RING: usize = 256;

impl RecentCallers {
    pub fn new(regions: usize) -> Self {
        let empty = (Caller::plain(*b"13800000000"), 0);
        RecentCallers {
            ring: vec![[empty; RING]; regions],
            filled: vec![0; regions],
            next: vec![0; regions],
        }
    }

    /// A recent caller of `region` with its topic, if any.
    pub fn pick(&self, rng: &mut impl Rng, region: usize) -> Option<(Caller, u32)> {
        let n = self.filled[region];
        (n > 0).then(|| self.ring[region][rng.random_range(0..n)])
    }

    /// Remembers a caller and the topic they called about.
    pub fn remember(&mut self, region: usize, caller: Caller, topic: u32) {
        let i = self.next[region];
        self.ring[region][i] = (caller, topic);
        self.next[region] = (i + 1) % RING;
        self.filled[region] = (self.filled[region] + 1).min(RING);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn numbers_hashes_and_ids_look_right() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..1000 {
            let p = phone(&mut rng);
            assert!(p.iter().all(u8::is_ascii_digit) && p[0] == b'1');
            let h = Caller::hashed(p);
            assert_eq!(h.as_str().len(), 32);
            assert!(h.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
            assert_eq!(h, Caller::hashed(p), "a customer's hash is stable");
            let mut id = String::new();
            push_id_number(&mut id, &mut rng, "3301");
            assert_eq!(id.len(), 18);
            assert!(id.starts_with("3301"));
        }
        // The textbook example's check character.
        assert_eq!(id_check(b"11010519491231002"), b'X');
        // Styled numbers keep their digits.
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut s = String::new();
        push_phone_styled(&mut s, &mut rng, b"18869439335");
        let digits: String = s
            .chars()
            .filter_map(|c| {
                c.to_digit(10)
                    .or_else(|| (c as u32).checked_sub(0xFF10).filter(|d| *d < 10))
            })
            .map(|d| char::from_digit(d, 10).unwrap())
            .collect();
        assert_eq!(digits, "18869439335");
    }
}
