#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The scratch matrices of one forward pass, allocated once per batch and freed when it goes away.
struct ForwardWorkspace: ~Copyable {
    private let storage: UnsafeMutableBufferPointer<Float>
    private let rowCount: Int
    private let hidden: Int
    private let intermediate: Int

    /// Allocates room for a batch of `rowCount` tokens.
    init(rowCount: Int, hidden: Int, intermediate: Int) {
        self.rowCount = rowCount
        self.hidden = hidden
        self.intermediate = intermediate
        // query/key/value [rows, 3·hidden], context [rows, hidden], sum [rows, hidden],
        // expanded [rows, intermediate].
        storage = .allocate(capacity: rowCount * (5 * hidden + intermediate))
        storage.initialize(repeating: 0)
    }

    deinit { storage.deallocate() }

    /// Calls `body` with the four scratch matrices: query/key/value `[rows, 3·hidden]`, context `[rows, hidden]`,
    /// sum `[rows, hidden]` and expanded `[rows, intermediate]`.
    /// - Warning: The pointers must not escape `body`.
    mutating func withBuffers<Result>(
        _ body: (
            UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
            UnsafeMutablePointer<Float>
        ) -> Result
    ) -> Result {
        let base = storage.baseAddress!
        let queryKeyValue = base
        let context = queryKeyValue + rowCount * 3 * hidden
        let sum = context + rowCount * hidden
        let expanded = sum + rowCount * hidden
        return body(queryKeyValue, context, sum, expanded)
    }
}

/// LayerNorm over each row of `[rowCount, scale.count]`: `(x - mean) / sqrt(variance + epsilon) · scale + bias`,
/// with the population variance, as PyTorch computes it. `input` and `output` may be the same matrix.
func normalizeLayer(
    _ input: UnsafePointer<Float>,
    rowCount: Int,
    scale: [Float],
    bias: [Float],
    epsilon: Float,
    into output: UnsafeMutablePointer<Float>
) {
    let dimension = scale.count
    scale.withUnsafeBufferPointer { scale in
        bias.withUnsafeBufferPointer { bias in
            for row in 0..<rowCount {
                let source = input + row * dimension
                let target = output + row * dimension
                var total: Float = 0
                for column in 0..<dimension { total += source[column] }
                let mean = total / Float(dimension)
                var squares: Float = 0
                for column in 0..<dimension {
                    let centered = source[column] - mean
                    squares += centered * centered
                }
                let inverseDeviation = 1 / (squares / Float(dimension) + epsilon).squareRoot()
                for column in 0..<dimension {
                    target[column] = (source[column] - mean) * inverseDeviation * scale[column] + bias[column]
                }
            }
        }
    }
}

/// Exact GELU in place: `x · ½ · (1 + erf(x / √2))`, the Hugging Face `gelu` activation.
func applyGELU(_ values: UnsafeMutablePointer<Float>, count: Int) {
    let inverseSquareRootOfTwo: Float = 0.707_106_77
    for index in 0..<count {
        let x = values[index]
        values[index] = 0.5 * x * (1 + erff(x * inverseSquareRootOfTwo))
    }
}

/// Softmax over each row of `[rowCount, columnCount]`, in place, subtracting the row maximum first.
func softmaxRows(_ values: UnsafeMutablePointer<Float>, rowCount: Int, columnCount: Int) {
    for row in 0..<rowCount {
        let line = values + row * columnCount
        var maximum = -Float.infinity
        for column in 0..<columnCount { maximum = max(maximum, line[column]) }
        var total: Float = 0
        for column in 0..<columnCount {
            let exponential = expf(line[column] - maximum)
            line[column] = exponential
            total += exponential
        }
        let inverseTotal = 1 / total
        for column in 0..<columnCount { line[column] *= inverseTotal }
    }
}
