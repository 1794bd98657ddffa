/// A bfloat16 value stored as its 16 bits: the upper half of an IEEE 754 single.
///
/// Conversion to `Float` is exact; conversion from `Float` rounds to nearest, ties to even, and keeps NaN a NaN.
public struct BFloat16: Sendable, Hashable, CustomStringConvertible {
    /// The 16 stored bits.
    public var bitPattern: UInt16

    /// Creates a value from its stored bits.
    /// - Parameter bitPattern: the upper 16 bits of a `Float`.
    public init(bitPattern: UInt16) {
        self.bitPattern = bitPattern
    }

    /// Rounds a `Float` to the nearest bfloat16 (ties to even).
    /// - Parameter value: the value to round.
    public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            // Keep the sign and force a quiet NaN so that truncation cannot produce infinity.
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
            return
        }
        // Round to nearest even on the 16 discarded bits. Cannot overflow: the largest finite Float plus the
        // rounding bias carries into the exponent and correctly gives infinity.
        let lsb = (bits >> 16) & 1
        let rounded = bits &+ 0x7FFF &+ lsb
        bitPattern = UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// The exact `Float` value.
    public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    public var description: String { floatValue.description }
}
