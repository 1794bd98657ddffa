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

/// Exact GELU in place, `x · ½ · (1 + erf(x / √2))` (Hugging Face `gelu`), eight lanes at a time.
///
/// `erf` is ``erf8(_:)``, within 4e-7 of the true value (Glibc's `erff`, used by ``referenceGELU(_:count:)``, is
/// within 1 ulp); the scalar `erff` calls took 13% of a forward pass.
func applyGELU(_ values: UnsafeMutablePointer<Float>, count: Int) {
    let vectorEnd = count - count % 8
    let half = SIMD8<Float>(repeating: 0.5)
    let one = SIMD8<Float>(repeating: 1)
    let inverseSquareRootOfTwo = SIMD8<Float>(repeating: 0.707_106_77)
    for index in stride(from: 0, to: vectorEnd, by: 8) {
        let x = load8(values + index)
        store8(half * x * (one + erf8(x * inverseSquareRootOfTwo)), values + index)
    }
    referenceGELU(values + vectorEnd, count: count - vectorEnd)
}

/// The scalar reference GELU, with Glibc's `erff`.
func referenceGELU(_ values: UnsafeMutablePointer<Float>, count: Int) {
    let inverseSquareRootOfTwo: Float = 0.707_106_77
    for index in 0..<count {
        let x = values[index]
        values[index] = 0.5 * x * (1 + erff(x * inverseSquareRootOfTwo))
    }
}

/// `erf` in eight lanes: `x · P(x²) / Q(x²)` on `[-4, 4]` (clamped outside, where `erf` is within 2e-8 of ±1).
///
/// P (degree 6) and Q (degree 5, Q(0) = 1) were fitted for this file by iteratively reweighted least squares on
/// `[0, 4]` (`scipy.special.erf` as the target): 1.7e-9 maximum error in float64 arithmetic, 3.8e-7 in float32.
@inline(__always)
func erf8(_ input: SIMD8<Float>) -> SIMD8<Float> {
    let x = clamp8(input, lowerBound: -4, upperBound: 4)
    let z = x * x
    var p = SIMD8<Float>(repeating: -1.378_907_7e-8)
    p = p * z + SIMD8(repeating: 4.805_221_5e-6)
    p = p * z + SIMD8(repeating: 3.835_953_4e-4)
    p = p * z + SIMD8(repeating: 3.840_526_8e-3)
    p = p * z + SIMD8(repeating: 5.434_796_1e-2)
    p = p * z + SIMD8(repeating: 1.846_646_8e-1)
    p = p * z + SIMD8(repeating: 1.128_379_2)
    var q = SIMD8<Float>(repeating: 6.424_516_7e-5)
    q = q * z + SIMD8(repeating: 1.311_012_1e-3)
    q = q * z + SIMD8(repeating: 1.545_853_7e-2)
    q = q * z + SIMD8(repeating: 1.138_264_1e-1)
    q = q * z + SIMD8(repeating: 4.969_883_6e-1)
    q = q * z + SIMD8(repeating: 1)
    return x * p / q
}

/// `exp` in eight lanes, for arguments in `[-87.3, 0]` and a little above (softmax after subtracting the row
/// maximum); arguments are clamped to `[-87.3, 88.3]`.
///
/// `x = n·ln2 + r` with `|r| ≤ ln2/2`; `e^r` by its Taylor series to degree 6 (truncation error 1.2e-7 relative)
/// and `2^n` built in the exponent bits. `n` is rounded with the `1.5·2²³` trick, which needs no SSE4.1.
@inline(__always)
func exp8(_ input: SIMD8<Float>) -> SIMD8<Float> {
    let x = clamp8(input, lowerBound: -87.3, upperBound: 88.3)
    let roundingMagic = SIMD8<Float>(repeating: 12_582_912)
    let shifted = x * SIMD8(repeating: 1.442_695_04) + roundingMagic
    let n = shifted - roundingMagic
    let r = x - n * SIMD8(repeating: 0.693_145_75) - n * SIMD8(repeating: 1.428_606_8e-6)
    var polynomial = SIMD8<Float>(repeating: 1.0 / 720)
    polynomial = polynomial * r + SIMD8(repeating: 1.0 / 120)
    polynomial = polynomial * r + SIMD8(repeating: 1.0 / 24)
    polynomial = polynomial * r + SIMD8(repeating: 1.0 / 6)
    polynomial = polynomial * r + SIMD8(repeating: 0.5)
    polynomial = polynomial * r + SIMD8(repeating: 1)
    polynomial = polynomial * r + SIMD8(repeating: 1)
    // The low mantissa bits of `shifted` hold n (|n| ≤ 127 after the clamp), so this integer difference is n.
    let exponent =
        unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(roundingMagic, to: SIMD8<Int32>.self)
    // n + 127 is in 1...254, a normal float's biased exponent.
    let scale = unsafeBitCast((exponent &+ 127) &<< 23, to: SIMD8<Float>.self)
    return polynomial * scale
}

/// Softmax over each row of `[rowCount, columnCount]`, in place, subtracting the row maximum first; eight lanes
/// at a time with ``exp8(_:)``.
func softmaxRows(_ values: UnsafeMutablePointer<Float>, rowCount: Int, columnCount: Int) {
    let vectorEnd = columnCount - columnCount % 8
    for row in 0..<rowCount {
        let line = values + row * columnCount
        var maximumLanes = SIMD8<Float>(repeating: -.infinity)
        for column in stride(from: 0, to: vectorEnd, by: 8) {
            let lanes = load8(line + column)
            maximumLanes.replace(with: lanes, where: lanes .> maximumLanes)
        }
        var maximum = maximumLanes.max()
        for column in vectorEnd..<columnCount { maximum = max(maximum, line[column]) }
        let maximumSplat = SIMD8<Float>(repeating: maximum)
        var totalLanes = SIMD8<Float>()
        for column in stride(from: 0, to: vectorEnd, by: 8) {
            let exponential = exp8(load8(line + column) - maximumSplat)
            store8(exponential, line + column)
            totalLanes += exponential
        }
        var total = totalLanes.sum()
        for column in vectorEnd..<columnCount {
            let exponential = expf(line[column] - maximum)
            line[column] = exponential
            total += exponential
        }
        let inverseTotal = 1 / total
        let inverseSplat = SIMD8<Float>(repeating: inverseTotal)
        for column in stride(from: 0, to: vectorEnd, by: 8) {
            store8(load8(line + column) * inverseSplat, line + column)
        }
        for column in vectorEnd..<columnCount { line[column] *= inverseTotal }
    }
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

/// Clamps each lane to `lowerBound...upperBound`.
///
/// Written with masks because the standard library's generic `clamped`, `pointwiseMin` and `pointwiseMax` were
/// not inlined here and took 11% of a forward pass.
@inline(__always)
func clamp8(_ value: SIMD8<Float>, lowerBound: Float, upperBound: Float) -> SIMD8<Float> {
    var result = value
    let lower = SIMD8<Float>(repeating: lowerBound)
    let upper = SIMD8<Float>(repeating: upperBound)
    result.replace(with: lower, where: result .< lower)
    result.replace(with: upper, where: result .> upper)
    return result
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
