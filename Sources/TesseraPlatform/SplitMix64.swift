/// A small, fast, seeded random number generator (SplitMix64): equal seeds give equal sequences on every
/// platform, for reproducible index builds, tests and benchmarks.
///
/// Not cryptographic. Print the seed of a random test so that a failure can be replayed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's state: the seed plus the number of values drawn times the golden-ratio increment.
    public private(set) var state: UInt64

    /// Creates a generator.
    /// - Parameter seed: The seed.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        // Wrapping arithmetic is the algorithm: SplitMix64 works modulo 2^64.
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SplitMix64 {
    /// A Float uniform in [-1, 1) (23 random mantissa bits).
    public mutating func signedUnit() -> Float {
        Float(next() >> 40) / Float(1 << 23) - 1
    }

    /// `count` Floats uniform in [-1, 1).
    /// - Parameter count: How many values.
    /// - Returns: The values.
    public mutating func signedUnits(_ count: Int) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        for index in 0..<count { values[index] = signedUnit() }
        return values
    }

    /// An Int uniform in `range`.
    /// - Parameter range: The range.
    /// - Returns: A value in it.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &self)
    }
}
