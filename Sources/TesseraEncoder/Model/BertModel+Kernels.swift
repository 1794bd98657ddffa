import CMaxSimKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The matrices of one forward pass, allocated once per call and reused by each of its groups of sequences.
///
/// Left uninitialised: every stage writes its matrix before any stage reads it.
struct ForwardWorkspace: ~Copyable {
    private let storage: UnsafeMutableBufferPointer<Float>
    private let scratch: UnsafeMutableRawPointer
    private let rowCapacity: Int
    private let hidden: Int
    private let intermediate: Int

    /// Allocates room for groups of up to `rowCapacity` tokens and `scratchByteCount` bytes for the packed
    /// kernels.
    init(rowCapacity: Int, hidden: Int, intermediate: Int, scratchByteCount: Int) {
        self.rowCapacity = rowCapacity
        self.hidden = hidden
        self.intermediate = intermediate
        // states [rows, hidden], query/key/value [rows, 3·hidden], context [rows, hidden], sum [rows, hidden],
        // expanded [rows, intermediate].
        storage = .allocate(capacity: max(1, rowCapacity * (6 * hidden + intermediate)))
        scratch = .allocate(byteCount: max(64, scratchByteCount), alignment: 64)
    }

    deinit {
        storage.deallocate()
        scratch.deallocate()
    }

    /// Calls `body` with the five matrices: states `[rows, hidden]`, query/key/value `[rows, 3·hidden]`, context
    /// `[rows, hidden]`, sum `[rows, hidden]` and expanded `[rows, intermediate]`, then the packed kernels'
    /// scratch bytes.
    /// - Warning: The pointers stay valid while the workspace lives; the states are overwritten by the next use.
    mutating func withBuffers<Result>(
        _ body: (
            UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
            UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutableRawPointer
        ) -> Result
    ) -> Result {
        let states = storage.baseAddress!
        let queryKeyValue = states + rowCapacity * hidden
        let context = queryKeyValue + rowCapacity * 3 * hidden
        let sum = context + rowCapacity * hidden
        let expanded = sum + rowCapacity * hidden
        return body(states, queryKeyValue, context, sum, expanded, scratch)
    }
}

/// LayerNorm over each row of `[rowCount, scale.count]`: `(x - mean) / sqrt(variance + epsilon) · scale + bias`,
/// with the population variance, as PyTorch computes it. `input` and `output` may be the same matrix.
///
/// Sums run in eight lanes (then reduced), so they are reassociated relative to a left-to-right sum: the
/// difference is a few float32 ulps of the row's magnitude.
func normalizeLayer(
    _ input: UnsafePointer<Float>,
    rowCount: Int,
    scale: [Float],
    bias: [Float],
    epsilon: Float,
    into output: UnsafeMutablePointer<Float>
) {
    let dimension = scale.count
    let vectorEnd = dimension - dimension % 8
    scale.withUnsafeBufferPointer { scale in
        bias.withUnsafeBufferPointer { bias in
            let scale = scale.baseAddress!
            let bias = bias.baseAddress!
            for row in 0..<rowCount {
                let source = input + row * dimension
                let target = output + row * dimension
                var lanes = SIMD8<Float>()
                for column in stride(from: 0, to: vectorEnd, by: 8) { lanes += load8(source + column) }
                var total = lanes.sum()
                for column in vectorEnd..<dimension { total += source[column] }
                let mean = total / Float(dimension)
                let meanLanes = SIMD8<Float>(repeating: mean)
                lanes = SIMD8<Float>()
                for column in stride(from: 0, to: vectorEnd, by: 8) {
                    let centered = load8(source + column) - meanLanes
                    lanes += centered * centered
                }
                var squares = lanes.sum()
                for column in vectorEnd..<dimension {
                    let centered = source[column] - mean
                    squares += centered * centered
                }
                let inverseDeviation = 1 / (squares / Float(dimension) + epsilon).squareRoot()
                let inverseLanes = SIMD8<Float>(repeating: inverseDeviation)
                for column in stride(from: 0, to: vectorEnd, by: 8) {
                    let normalized = (load8(source + column) - meanLanes) * inverseLanes
                    store8(normalized * load8(scale + column) + load8(bias + column), target + column)
                }
                for column in vectorEnd..<dimension {
                    target[column] = (source[column] - mean) * inverseDeviation * scale[column] + bias[column]
                }
            }
        }
    }
}

/// Exact GELU in place, `x · ½ · (1 + erf(x / √2))` (Hugging Face `gelu`), in CMaxSimKernels' widest variant.
///
/// `erf` is a rational approximation within 4e-7 of the true value (Glibc's `erff`, used by
/// ``referenceGELU(_:count:)``, is within 1 ulp); the scalar `erff` calls once took 13% of a forward pass.
func applyGELU(_ values: UnsafeMutablePointer<Float>, count: Int, isa: Int32 = tsr_isa_best()) {
    tsr_gelu(isa, values, Int64(count))
}

/// The scalar reference GELU, with Glibc's `erff`.
func referenceGELU(_ values: UnsafeMutablePointer<Float>, count: Int) {
    let inverseSquareRootOfTwo: Float = 0.707_106_77
    for index in 0..<count {
        let x = values[index]
        values[index] = 0.5 * x * (1 + erff(x * inverseSquareRootOfTwo))
    }
}

/// Softmax over each row of `[rowCount, columnCount]`, in place, subtracting the row maximum first, in
/// CMaxSimKernels' widest variant (exp within 1.2e-7 relative).
func softmaxRows(
    _ values: UnsafeMutablePointer<Float>,
    rowCount: Int,
    columnCount: Int,
    isa: Int32 = tsr_isa_best()
) {
    tsr_softmax_rows(isa, values, Int32(rowCount), Int32(columnCount))
}

/// The scalar reference softmax, with Glibc's `expf`.
func referenceSoftmaxRows(_ values: UnsafeMutablePointer<Float>, rowCount: Int, columnCount: Int) {
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

/// Loads eight floats from any alignment.
@inline(__always)
func load8(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

/// Stores eight floats to any alignment.
@inline(__always)
func store8(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD8<Float>.self)
}
