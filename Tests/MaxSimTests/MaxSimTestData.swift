import MaxSim
import TesseraTestSupport

/// Test data shared by the MaxSim suites.
enum MaxSimTestData {
    /// Random token rows in [-1, 1), with every fifth token (starting at `zeroPhase`) set to zero so zero
    /// vectors and exact ties occur.
    static func rows(_ tokenCount: Int, dimension: Int, random: inout SeededRandom, zeroPhase: Int = 2) -> [Float] {
        var values = random.signedUnits(tokenCount * dimension)
        for token in stride(from: zeroPhase, to: tokenCount, by: 5) {
            for k in 0..<dimension { values[token * dimension + k] = 0 }
        }
        return values
    }

    /// The Float rounding bound the kernels promise against the Float64 reference: a fused chain of
    /// `dimension` multiply-adds per similarity, up to three more roundings for int8 scaling, and a sum of
    /// `queryTokens` maxima, each at most one unit roundoff (2^-24) of the magnitudes involved.
    static func tolerance(dimension: Int, queryTokens: Int, magnitude: Double) -> Double {
        Double(dimension + queryTokens + 4) * 0x1p-24 * magnitude + 1e-30
    }

    /// The query the kernel actually scores against int8 documents in integer mode: the same per-token
    /// quantisation the kernel applies.
    static func effectiveQuery(_ query: Multivector, documents: TokenElementType, kernel: MaxSimKernel) -> Multivector {
        guard documents == .int8, kernel.int8Mode == .integer, query.elements.elementType != .int8 else { return query }
        let values = query.elements.floatValues(dimension: query.dimension)
        let (quantized, scales) = Int8Quantizer.quantize(values, dimension: query.dimension)
        return try! Multivector(elements: .int8(values: quantized, scales: scales), dimension: query.dimension)
    }
}
