import TesseraPlatform

/// A seeded random number generator for reproducible tests and benchmarks: ``TesseraPlatform/SplitMix64`` with
/// helpers for test data.
///
/// Print the seed of a random test so a failure can be replayed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var generator: SplitMix64

    /// Creates a generator.
    /// - Parameter seed: the seed; equal seeds give equal sequences.
    public init(seed: UInt64) {
        generator = SplitMix64(seed: seed)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 { generator.next() }

    /// A Float uniform in [-1, 1).
    public mutating func signedUnit() -> Float { generator.signedUnit() }

    /// `count` Floats uniform in [-1, 1).
    /// - Parameter count: how many values.
    /// - Returns: the values.
    public mutating func signedUnits(_ count: Int) -> [Float] { generator.signedUnits(count) }

    /// An Int uniform in `range`.
    /// - Parameter range: the range.
    /// - Returns: a value in it.
    public mutating func int(in range: ClosedRange<Int>) -> Int { generator.int(in: range) }
}
