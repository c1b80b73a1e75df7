//! Packing unsigned values of a fixed bit width into bytes, least significant bit first.

/// Bytes of `n` values of `bits` bits, packed.
pub(super) fn packed_len(n: usize, bits: usize) -> Option<usize> {
    n.checked_mul(bits).map(|b| b.div_ceil(8))
}

/// Appends `values` (each below `2^bits`, `bits` in 1..=24) to `out`, padded to a byte.
pub(super) fn pack(values: impl Iterator<Item = u32>, bits: usize, out: &mut Vec<u8>) {
    let (mut acc, mut n) = (0u64, 0usize);
    for v in values {
        acc |= u64::from(v) << n;
        n += bits;
        while n >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            n -= 8;
        }
    }
    if n > 0 {
        out.push(acc as u8);
    }
}

/// `count` values of `bits` (1..=24) bits from `bytes` (which must hold them).
pub(super) fn unpack(bytes: &[u8], count: usize, bits: usize) -> Vec<u32> {
    let mask = (1u64 << bits) - 1;
    (0..count)
        .map(|i| {
            let bit = i * bits;
            let mut word = 0u64;
            for (k, b) in bytes.iter().skip(bit / 8).take(4).enumerate() {
                word |= u64::from(*b) << (8 * k);
            }
            ((word >> (bit % 8)) & mask) as u32
        })
        .collect()
}
