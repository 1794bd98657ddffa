/// The plain MaxSim reference: every product and sum in Float64, no tiling, no threads.
///
/// It defines what the kernels compute (up to Float rounding) and is what the tests compare them against.
/// Inputs are read through ``TokenElements/floatValue(at:dimension:)``, so Float16 and BFloat16 values are
/// exact and Int8 values are `Float(value) * scale`.
public enum MaxSimReference {
    /// A reference score with its matches and the magnitude that bounds its rounding error.
    public struct Result: Sendable, Equatable {
        /// `Σ_i max_j q_i · d_j` in Float64 (0 for a document with no tokens).
        public var score: Double
        /// For each query token, the lowest document token index reaching the maximum (−1 with no tokens).
        public var argmax: [Int]
        /// For each query token, the best similarity and the runner-up (to detect near-ties).
        public var best: [(first: Double, second: Double)]
        /// `Σ_i max_j Σ_k |q_ik| |d_jk|`: the scale that Float rounding error is proportional to.
        public var magnitude: Double

        public static func == (lhs: Result, rhs: Result) -> Bool {
            lhs.score == rhs.score && lhs.argmax == rhs.argmax && lhs.magnitude == rhs.magnitude
        }
    }

    /// Scores one query against one document.
    /// - Parameters:
    ///   - query: the query's tokens.
    ///   - document: the document's tokens; same dimension as the query.
    /// - Returns: the Float64 score, matches and error magnitude.
    /// - Precondition: the dimensions are equal.
    public static func score(query: Multivector, document: Multivector) -> Result {
        precondition(query.dimension == document.dimension, "query and document dimensions differ")
        let dimension = query.dimension
        let q = query.elements.floatValues(dimension: dimension).map(Double.init)
        let d = document.elements.floatValues(dimension: dimension).map(Double.init)
        let queryTokens = query.tokenCount
        let documentTokens = document.tokenCount
        var score = 0.0
        var magnitude = 0.0
        var argmax = [Int](repeating: -1, count: queryTokens)
        var best = [(first: Double, second: Double)](repeating: (0, 0), count: queryTokens)
        for i in 0..<queryTokens {
            guard documentTokens > 0 else { continue }
            var first = -Double.infinity
            var second = -Double.infinity
            var firstIndex = -1
            var largestMagnitude = 0.0
            for j in 0..<documentTokens {
                var sum = 0.0
                var absolute = 0.0
                for k in 0..<dimension {
                    let product = q[i * dimension + k] * d[j * dimension + k]
                    sum += product
                    absolute += Swift.abs(product)
                }
                largestMagnitude = Swift.max(largestMagnitude, absolute)
                if sum > first {
                    second = first
                    first = sum
                    firstIndex = j
                } else if sum > second {
                    second = sum
                }
            }
            score += first
            magnitude += largestMagnitude
            argmax[i] = firstIndex
            best[i] = (first, second)
        }
        return Result(score: score, argmax: argmax, best: best, magnitude: magnitude)
    }
}
