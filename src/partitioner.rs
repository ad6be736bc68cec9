//! Which input partition a ticket id belongs to under the producers' partitioner. Pure.
//!
//! Live mode keeps each ticket's state with the partition its events arrive on, so a record
//! whose ticket id maps to another partition is rejected (dead letter `misrouted`) rather than
//! applied out of order with the ticket's other events.
//!
//! Invariant: for every non-empty key, [`Partitioner::partition`] is bit-exact with the
//! producer that wrote the record: Kafka's Java client (`Utils.murmur2` + `toPositive`) and
//! librdkafka's `rd_kafka_msg_partitioner_{murmur2,consistent,fnv1a}` with `rd_murmur2`,
//! `rd_crc32` and `rd_fnv1a`. A single differing key would dead-letter valid traffic, so the
//! tests pin the reference implementations' own vectors and `tests/partitioner.rs` checks
//! against the real librdkafka.

use serde::Deserialize;

/// How producers map a record key (the ticket id) to a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partitioner {
    /// Kafka's Java default partitioner and librdkafka's `murmur2` / `murmur2_random`:
    /// `(murmur2(key) & 0x7fffffff) % partitions`.
    // The librdkafka names are accepted so a producer's `partitioner` setting can be copied
    // verbatim; the `_random` variants differ only for NULL keys (and `consistent_random` for
    // empty ones).
    #[serde(alias = "murmur2_random")]
    Murmur2,
    /// librdkafka's default `consistent_random`, and `consistent`: `crc32(key) % partitions`.
    #[serde(alias = "consistent_random")]
    Consistent,
    /// librdkafka's `fnv1a` / `fnv1a_random`, and Sarama's default `NewHashPartitioner`:
    /// `|fnv1a(key) as i32| % partitions`. Not Sarama's `NewReferenceHashPartitioner` (or
    /// `WithAbsFirst`), which masks the sign bit instead of taking the absolute value.
    #[serde(alias = "fnv1a_random")]
    Fnv1a,
}

impl Partitioner {
    /// The partition of `0..partitions` that the producers send `key` to.
    ///
    /// An empty key is hashed like any other, as the Java client, Sarama and every librdkafka
    /// partitioner here except `consistent_random` do; that one spreads empty keys at random,
    /// so they have no home partition. Ticket ids are never empty, so this does not arise.
    ///
    /// # Panics
    /// If `partitions` is not positive.
    pub fn partition(self, key: &[u8], partitions: i32) -> i32 {
        assert!(partitions > 0, "partition count must be positive, got {partitions}");
        let hash = match self {
            Partitioner::Murmur2 => murmur2(key) & 0x7fff_ffff,
            Partitioner::Consistent => crc32(key),
            Partitioner::Fnv1a => rd_fnv1a(key),
        };
        // librdkafka's modulo is unsigned (a u32 hash against the i32 count promoted to
        // unsigned); Java's is on a non-negative int, which is the same thing.
        (hash % partitions as u32) as i32
    }

    /// The librdkafka `partitioner` setting that places keyed records this way. The `_random`
    /// variants spread NULL keys as the Java client does instead of pinning them to one
    /// partition; non-empty keys are placed identically.
    pub fn librdkafka(self) -> &'static str {
        match self {
            Partitioner::Murmur2 => "murmur2_random",
            Partitioner::Consistent => "consistent_random",
            Partitioner::Fnv1a => "fnv1a_random",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Partitioner::Murmur2 => "murmur2",
            Partitioner::Consistent => "consistent",
            Partitioner::Fnv1a => "fnv1a",
        }
    }
}

/// Java's `Utils.murmur2` (MurmurHash2, seed 0x9747b28c, little-endian words, unsigned tail
/// bytes), which librdkafka's `rd_murmur2` reproduces.
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    // Both references take the length modulo 2^32; keys are far shorter.
    let mut h = 0x9747_b28c ^ data.len() as u32;
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes(word.try_into().expect("chunks of 4"));
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// librdkafka's `rd_crc32`: the standard reflected CRC-32 (zlib, IEEE 802.3).
fn crc32(data: &[u8]) -> u32 {
    !data
        .iter()
        .fold(!0, |crc, &b| CRC32_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8))
}

const CRC32_TABLE: [u32; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// librdkafka's `rd_fnv1a`: 32-bit FNV-1a, then the absolute value of the hash read as i32,
/// to match Sarama. `i32::MIN` has no positive counterpart and stays 0x8000_0000, as it
/// does in librdkafka's two's-complement negation.
fn rd_fnv1a(data: &[u8]) -> u32 {
    let h = data
        .iter()
        .fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    (h as i32).unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Keys of librdkafka's `unittest_murmur2` and `unittest_fnv1a`
    /// (confluentinc/librdkafka src/rdmurmur2.c, src/rdfnv1a.c): aligned and unaligned
    /// suffixes of two strings, which here only exercise the tail lengths.
    const RD_UNITTEST_KEYS: [&str; 11] = [
        "kafka",
        "giberish123456789",
        "1234",
        "234",
        "34",
        "4",
        "PreAmbleWillBeRemoved,ThePrePartThatIs",
        "reAmbleWillBeRemoved,ThePrePartThatIs",
        "eAmbleWillBeRemoved,ThePrePartThatIs",
        "AmbleWillBeRemoved,ThePrePartThatIs",
        "",
    ];

    #[test]
    fn murmur2_matches_java_utils_test() {
        // apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
        // testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key) as i32, expected, "{:?}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn murmur2_and_fnv1a_match_librdkafka_unittests() {
        // confluentinc/librdkafka src/rdmurmur2.c, unittest_murmur2 (java_murmur2_results), and
        // src/rdfnv1a.c, unittest_fnv1a (golang_hashfnv_results).
        let murmur2_expected = [
            0xd067cf64, 0x8f552b0c, 0x9fc97b14, 0xe7c009ca, 0x873930da, 0x5a4b5ca1, 0x78424f1c, 0x4a62b377, 0xe0e4e09e,
            0x62b8b43f, 0x106e08d9,
        ];
        let fnv1a_expected = [
            0x0d33c4e1, 0x77a58295, 0x023bdd03, 0x2dea3cd2, 0x740fa83e, 0x310ca263, 0x65cbd69c, 0x6e49c79a, 0x69eed356,
            0x6abcc023, 0x7ee3623b,
        ];
        let hashes = [
            ("murmur2", murmur2 as fn(&[u8]) -> u32, murmur2_expected),
            ("fnv1a", rd_fnv1a, fnv1a_expected),
        ];
        for (name, hash, expected) in hashes {
            for (key, expected) in RD_UNITTEST_KEYS.iter().zip(expected) {
                assert_eq!(hash(key.as_bytes()), expected, "{name} of {key:?}");
            }
        }
    }

    #[test]
    fn crc32_is_the_standard_one() {
        // The CRC-32 check value of the catalogue of parametrised CRCs (CRC-32/ISO-HDLC).
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn partitions_match_librdkafka_0048_partitioner() {
        // confluentinc/librdkafka tests/0048-partitioner.c, do_test_partitioners: expected
        // hashes for the non-NULL keys, taken modulo its two partition counts.
        let keys = [
            "",
            "23456",
            "this is another string with more length to it perhaps",
            "hejsan",
        ];
        let cases = [
            (Partitioner::Consistent, [0x0, 0xb1b451d7, 0xb0150df7, 0xd077037e]),
            (Partitioner::Murmur2, [0x106e08d9, 0x058d780f, 0x4f7703da, 0x5ec19395]),
            (Partitioner::Fnv1a, [0x7ee3623b, 0x27e6f469, 0x155e3e5f, 0x17b1e27a]),
        ];
        for (partitioner, hashes) in cases {
            for (key, hash) in keys.iter().zip(hashes) {
                for partitions in [7, 17] {
                    assert_eq!(
                        partitioner.partition(key.as_bytes(), partitions),
                        (hash % partitions as u32) as i32,
                        "{partitioner:?} {key:?} over {partitions}",
                    );
                }
            }
        }
    }

    #[test]
    fn names_round_trip_and_librdkafka_names_are_accepted() {
        for (name, partitioner) in [
            ("murmur2", Partitioner::Murmur2),
            ("murmur2_random", Partitioner::Murmur2),
            ("consistent", Partitioner::Consistent),
            ("consistent_random", Partitioner::Consistent),
            ("fnv1a", Partitioner::Fnv1a),
            ("fnv1a_random", Partitioner::Fnv1a),
        ] {
            let parsed: Partitioner = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(parsed, partitioner);
            assert!(name.starts_with(parsed.as_str()));
            assert!(parsed.librdkafka().starts_with(parsed.as_str()));
        }
    }

    /// Sarama's `NewHashPartitioner` takes `int32(hash) % n` and then negates a negative
    /// result, where librdkafka takes the absolute value first; for a positive `n` both give
    /// `|hash| mod n`, including for `i32::MIN`, which is why Sarama is claimed above.
    fn sarama(hash: i32, partitions: i32) -> i32 {
        let p = hash % partitions;
        if p < 0 { -p } else { p }
    }

    #[test]
    fn sarama_agrees_at_i32_min() {
        for partitions in [1, 2, 3, 7, 17, 1000, i32::MAX] {
            assert_eq!(
                sarama(i32::MIN, partitions) as u32,
                i32::MIN.unsigned_abs() % partitions as u32
            );
        }
    }

    proptest! {
        #[test]
        fn partition_is_in_range(
            key in proptest::collection::vec(any::<u8>(), 0..200),
            partitions in 1..=i32::MAX,
        ) {
            for partitioner in [Partitioner::Murmur2, Partitioner::Consistent, Partitioner::Fnv1a] {
                let p = partitioner.partition(&key, partitions);
                prop_assert!((0..partitions).contains(&p), "{partitioner:?} gave {p} of {partitions}");
            }
        }

        #[test]
        fn sarama_hash_partitioner_agrees(hash in any::<i32>(), partitions in 1..=i32::MAX) {
            prop_assert_eq!(sarama(hash, partitions) as u32, hash.unsigned_abs() % partitions as u32);
        }
    }
}
