//! Function types, addresses and key groups.
//!
//! A [`FunctionType`] is `namespace/name`; an [`Address`] is a function type plus an id and
//! names one logical instance with its own state and mailbox. Addresses hash into one of
//! [`KEY_GROUPS`] key groups — the unit of ownership (a partition worker owns a range of key
//! groups), of snapshots and of future rescaling. The hash is FNV-1a over the address parts,
//! fixed forever: snapshots depend on it.

use eddy_protocol::reqreply;
use std::fmt;
use std::sync::Arc;

/// Number of key groups. Fixed per deployment: changing it re-homes every address.
pub const KEY_GROUPS: u32 = 128;

/// A function type: `namespace/name`, e.g. `com.example/greeter`.
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct FunctionType(Arc<Parts>);

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Parts {
    namespace: String,
    name: String,
    /// FNV-1a over `namespace`, 0, `name`, 0: the start of every key-group hash of this type,
    /// and what the type hashes as (a function of the parts, so equal types hash equally).
    digest: u64,
}

impl std::hash::Hash for FunctionType {
    /// The digest of the parts, computed once per type rather than per lookup.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.digest);
    }
}

impl PartialEq for FunctionType {
    /// Equal parts; most comparisons are of clones of one `Arc`, decided without looking.
    fn eq(&self, other: &FunctionType) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl FunctionType {
    /// A function type from its namespace and name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> FunctionType {
        let (namespace, name) = (namespace.into(), name.into());
        let mut digest = Fnv1a::new();
        digest.write(namespace.as_bytes());
        digest.write(&[0]);
        digest.write(name.as_bytes());
        digest.write(&[0]);
        FunctionType(Arc::new(Parts {
            namespace,
            name,
            digest: digest.finish(),
        }))
    }

    /// Parses `namespace/name`. Both parts must be non-empty and the name has no `/`.
    pub fn parse(text: &str) -> Result<FunctionType, String> {
        match text.split_once('/') {
            Some((namespace, name))
                if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(FunctionType::new(namespace, name))
            }
            _ => Err(format!(
                "{text:?} is not a function type: expected \"namespace/name\", e.g. \"com.example/greeter\""
            )),
        }
    }

    /// The namespace, e.g. `com.example`.
    pub fn namespace(&self) -> &str {
        &self.0.namespace
    }

    /// The name, e.g. `greeter`.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl fmt::Display for FunctionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace(), self.name())
    }
}

impl fmt::Debug for FunctionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The id of a function instance: a string kept inline when it is short.
///
/// Most ids are short (user ids, order numbers, sensor names), and every message carries
/// one, so an id of up to [`Id::INLINE`] bytes lives inside the address itself: making,
/// comparing and dropping it touches no heap and no other cache line. Longer ids share one
/// `Arc<str>` between clones.
#[derive(Clone)]
pub struct Id(Repr);

#[derive(Clone)]
enum Repr {
    /// `bytes[..len]` is the id, valid UTF-8 (it is only ever copied from a `&str`).
    Inline {
        len: u8,
        bytes: [u8; Id::INLINE],
    },
    Heap(Arc<str>),
}

impl Id {
    /// The longest id kept inline, in bytes (the id is then as large as a `String`).
    pub const INLINE: usize = 22;

    /// An id with the text of `id`.
    pub fn new(id: &str) -> Id {
        if id.len() <= Id::INLINE {
            let mut bytes = [0; Id::INLINE];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            Id(Repr::Inline {
                len: id.len() as u8,
                bytes,
            })
        } else {
            Id(Repr::Heap(Arc::from(id)))
        }
    }

    /// The id's UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(text) => text.as_bytes(),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Inline bytes are copied from a `&str` whole, so they are always valid UTF-8;
            // the check costs a few nanoseconds on at most `INLINE` bytes and only readers of
            // the text (not hashing, comparing or encoding, which use the bytes) pay it.
            Repr::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Repr::Heap(text) => text,
        }
    }
}

impl std::ops::Deref for Id {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Id {
    fn from(id: &str) -> Id {
        Id::new(id)
    }
}

impl From<&String> for Id {
    fn from(id: &String) -> Id {
        Id::new(id)
    }
}

impl From<String> for Id {
    fn from(id: String) -> Id {
        if id.len() <= Id::INLINE {
            Id::new(&id)
        } else {
            Id(Repr::Heap(Arc::from(id)))
        }
    }
}

impl From<&Id> for Id {
    fn from(id: &Id) -> Id {
        id.clone()
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        match (&self.0, &other.0) {
            // Unused inline bytes are always zero, so whole arrays compare like the ids (a
            // fixed-size comparison, without a call into `memcmp`).
            (
                Repr::Inline { len, bytes },
                Repr::Inline {
                    len: other_len,
                    bytes: other_bytes,
                },
            ) => len == other_len && bytes == other_bytes,
            _ => self.as_bytes() == other.as_bytes(),
        }
    }
}

impl Eq for Id {}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialOrd for Id {
    fn partial_cmp(&self, other: &Id) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Id {
    /// Byte order, which for UTF-8 is the order of the text's characters.
    fn cmp(&self, other: &Id) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for Id {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
        state.write_u8(0xff);
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The address of one function instance: type + id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    pub function_type: FunctionType,
    pub id: Id,
}

impl Address {
    /// An address from its function type and id.
    pub fn new(function_type: FunctionType, id: impl Into<Id>) -> Address {
        Address {
            function_type,
            id: id.into(),
        }
    }

    /// Parses `namespace/name/id` (the id may itself contain `/`).
    pub fn parse(text: &str) -> Result<Address, String> {
        Address::parse_reusing(text, &mut None)
    }

    /// [`Address::parse`], sharing the function type with `last` when it is the same (and
    /// remembering it there otherwise): readers of many messages for a few function types
    /// then allocate only the id.
    pub fn parse_reusing(text: &str, last: &mut Option<FunctionType>) -> Result<Address, String> {
        let mut slashes = memchr::memchr_iter(b'/', text.as_bytes());
        match (slashes.next(), slashes.next()) {
            (Some(first), Some(second))
                if first > 0 && second > first + 1 && second + 1 < text.len() =>
            {
                let (namespace, name, id) =
                    (&text[..first], &text[first + 1..second], &text[second + 1..]);
                let function_type = match last {
                    Some(known) if known.namespace() == namespace && known.name() == name => {
                        known.clone()
                    }
                    _ => {
                        let function_type = FunctionType::new(namespace, name);
                        *last = Some(function_type.clone());
                        function_type
                    }
                };
                Ok(Address::new(function_type, id))
            }
            _ => Err(format!(
                "{text:?} is not an address: expected \"namespace/name/id\", e.g. \"com.example/greeter/alice\""
            )),
        }
    }

    /// The key group of this address, in `0..KEY_GROUPS`.
    pub fn key_group(&self) -> u32 {
        // Continues the type's digest (namespace, 0, name, 0) with the id.
        let mut hash = Fnv1a(self.function_type.0.digest);
        hash.write(self.id.as_bytes());
        (hash.finish() % u64::from(KEY_GROUPS)) as u32
    }

    /// This address in the wire format.
    pub fn to_proto(&self) -> reqreply::Address {
        reqreply::Address {
            namespace: self.function_type.namespace().to_string(),
            r#type: self.function_type.name().to_string(),
            id: self.id.to_string(),
        }
    }

    /// An address from the wire format; every part must be non-empty.
    pub fn from_proto(address: &reqreply::Address) -> Result<Address, String> {
        if address.namespace.is_empty() || address.r#type.is_empty() || address.id.is_empty() {
            return Err(format!(
                "address {}/{}/{} has an empty part: namespace, type and id are all required",
                address.namespace, address.r#type, address.id
            ));
        }
        Ok(Address::new(
            FunctionType::new(address.namespace.clone(), address.r#type.clone()),
            address.id.as_str(),
        ))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.function_type, self.id)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The range of key groups owned by worker `index` of `workers`.
pub fn key_groups_of_worker(index: usize, workers: usize) -> std::ops::Range<u32> {
    let workers = workers.max(1) as u32;
    let index = index as u32;
    let start = index * KEY_GROUPS / workers;
    let end = (index + 1) * KEY_GROUPS / workers;
    start..end
}

/// The worker that owns `key_group` when there are `workers` workers (the router keeps a
/// precomputed table of this).
pub fn worker_of_key_group(key_group: u32, workers: usize) -> usize {
    (0..workers.max(1))
        .find(|index| key_groups_of_worker(*index, workers).contains(&key_group))
        .unwrap_or(0)
}

/// 64-bit FNV-1a: tiny, fast on short keys, and stable across versions and platforms.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_reusing_shares_the_function_type_of_consecutive_addresses() {
        let mut last = None;
        let a = Address::parse_reusing("com.example/f/a", &mut last).expect("a");
        let b = Address::parse_reusing("com.example/f/b", &mut last).expect("b");
        assert!(Arc::ptr_eq(&a.function_type.0, &b.function_type.0));
        let c = Address::parse_reusing("com.example/g/c", &mut last).expect("c");
        assert_eq!(c.function_type, FunctionType::new("com.example", "g"));
        assert_eq!(c.id, "c");
        assert_eq!(last, Some(FunctionType::new("com.example", "g")));
        assert!(Address::parse_reusing("com.example/g", &mut last).is_err());
    }

    #[test]
    fn parses_types_and_addresses() {
        let address = Address::parse("com.example/greeter/a/b").expect("valid");
        assert_eq!(address.function_type.namespace(), "com.example");
        assert_eq!(address.function_type.name(), "greeter");
        assert_eq!(address.id, "a/b");
        assert!(Address::parse("com.example/greeter").is_err());
        assert!(Address::parse("/greeter/x").is_err());
        assert!(FunctionType::parse("a/b/c").is_err());
        assert!(FunctionType::parse("a/").is_err());
    }

    #[test]
    fn short_ids_are_inline_and_long_ones_shared() {
        assert_eq!(std::mem::size_of::<Id>(), std::mem::size_of::<String>());
        let longest = "x".repeat(Id::INLINE);
        assert!(matches!(Id::new(&longest).0, Repr::Inline { len: 22, .. }));
        assert!(matches!(Id::new("").0, Repr::Inline { len: 0, .. }));
        let long = Id::from(format!("{longest}y"));
        let Repr::Heap(text) = &long.0 else {
            panic!("an id of {} bytes is not inline", Id::INLINE + 1)
        };
        let clone = long.clone();
        let Repr::Heap(cloned) = &clone.0 else {
            panic!("a clone of a shared id is shared")
        };
        assert!(Arc::ptr_eq(text, cloned));
        assert_eq!(&*long, format!("{longest}y"));
        // Multi-byte characters at the boundary: 11 two-byte characters fit, 12 do not.
        assert!(matches!(Id::new(&"é".repeat(11)).0, Repr::Inline { .. }));
        assert!(matches!(Id::new(&"é".repeat(12)).0, Repr::Heap(_)));
        assert_eq!(Id::new(&"é".repeat(11)).as_str(), "é".repeat(11));
    }

    #[test]
    fn key_group_is_stable() {
        // Pinned: snapshots depend on these values never changing.
        let key_group = |text: &str| Address::parse(text).expect("valid").key_group();
        assert_eq!(key_group("com.example/counter/alice"), 38);
        assert_eq!(key_group("eddy.demo/greeter/bob"), 37);
    }

    /// FNV-1a 64 over `namespace`, 0, `name`, 0, `id`, modulo [`KEY_GROUPS`], written out.
    fn reference_key_group(namespace: &str, name: &str, id: &str) -> u32 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = [
            namespace.as_bytes(),
            &[0],
            name.as_bytes(),
            &[0],
            id.as_bytes(),
        ]
        .concat();
        for byte in bytes {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        (hash % u64::from(KEY_GROUPS)) as u32
    }

    proptest! {
        #[test]
        fn key_groups_follow_the_fixed_formula(namespace in "[a-z.]{1,12}", name in "[a-z]{1,8}", id in "[a-z0-9/é]{1,12}") {
            let address = Address::new(FunctionType::new(namespace.as_str(), name.as_str()), id.as_str());
            prop_assert_eq!(address.key_group(), reference_key_group(&namespace, &name, &id));
        }

        #[test]
        fn equal_function_types_hash_equally(namespace in "[a-z.]{1,12}", name in "[a-z]{1,8}") {
            use std::hash::BuildHasher as _;
            let hasher = std::collections::hash_map::RandomState::new();
            let (a, b) = (FunctionType::new(namespace.as_str(), name.as_str()), FunctionType::new(namespace.as_str(), name.as_str()));
            prop_assert!(!Arc::ptr_eq(&a.0, &b.0));
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b));
        }

        #[test]
        fn ids_behave_as_their_text(a in "[a-zé/]{0,30}", b in "[a-zé/]{0,30}") {
            use std::hash::BuildHasher;
            let (id_a, id_b) = (Id::new(&a), Id::from(b.clone()));
            prop_assert_eq!(id_a.as_str(), a.as_str());
            prop_assert_eq!(id_b.as_bytes(), b.as_bytes());
            prop_assert_eq!(id_a == id_b, a == b);
            prop_assert_eq!(id_a.cmp(&id_b), a.cmp(&b));
            prop_assert_eq!(id_a.to_string(), a.clone());
            prop_assert_eq!(format!("{id_a:?}"), format!("{a:?}"));
            let hasher = std::hash::RandomState::new();
            prop_assert_eq!(hasher.hash_one(&id_a) == hasher.hash_one(Id::new(&b)), a == b);
            prop_assert_eq!(hasher.hash_one(&id_a), hasher.hash_one(id_a.clone()));
        }

        #[test]
        fn addresses_split_at_the_first_two_slashes(text in "[a/é]{0,7}") {
            // The rule as `splitn` states it.
            let mut parts = text.splitn(3, '/');
            let expected = match (parts.next(), parts.next(), parts.next()) {
                (Some(namespace), Some(name), Some(id))
                    if !namespace.is_empty() && !name.is_empty() && !id.is_empty() =>
                {
                    Some((namespace.to_string(), name.to_string(), id.to_string()))
                }
                _ => None,
            };
            let parsed = Address::parse(&text).ok().map(|address| {
                let (namespace, name) = (address.function_type.namespace(), address.function_type.name());
                (namespace.to_string(), name.to_string(), address.id.to_string())
            });
            prop_assert_eq!(parsed, expected);
        }

        #[test]
        fn every_key_group_has_exactly_its_owner(workers in 1usize..=64) {
            for key_group in 0..KEY_GROUPS {
                let owner = worker_of_key_group(key_group, workers);
                prop_assert!(owner < workers);
                prop_assert!(key_groups_of_worker(owner, workers).contains(&key_group));
            }
        }
    }
}
