/// A small, fast, seeded random number generator (SplitMix64) for reproducible tests and benchmarks.
///
/// Print the seed of a random test so a failure can be replayed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator.
    /// - Parameter seed: the seed; equal seeds give equal sequences.
    public init(seed: UInt64) {
        state = seed
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        // Wrapping arithmetic is the algorithm: SplitMix64 works modulo 2^64.
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A Float uniform in [-1, 1).
    public mutating func signedUnit() -> Float {
        Float(next() >> 40) / Float(1 << 23) - 1
    }

    /// `count` Floats uniform in [-1, 1).
    /// - Parameter count: how many values.
    /// - Returns: the values.
    public mutating func signedUnits(_ count: Int) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        for index in 0..<count { values[index] = signedUnit() }
        return values
    }

    /// An Int uniform in `range`.
    /// - Parameter range: the range.
    /// - Returns: a value in it.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &self)
    }
}
