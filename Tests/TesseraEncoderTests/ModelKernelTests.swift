import Testing

@testable import TesseraEncoder

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The vectorised element-wise kernels against their scalar references (Glibc `erff` and `expf`).
@Suite("Forward-pass kernels")
struct ModelKernelTests {
    static func values(count: Int, spread: Float) -> [Float] {
        (0..<count).map { index in spread * Float(index % 97 - 48) / 48 + 0.013 * Float(index % 7) }
    }

    @Test("vectorised GELU matches erff-based GELU", arguments: [0, 1, 7, 8, 9, 128, 1536])
    func gelu(count: Int) {
        var fast = Self.values(count: count, spread: 6)
        var reference = fast
        fast.withUnsafeMutableBufferPointer { applyGELU($0.baseAddress!, count: count) }
        reference.withUnsafeMutableBufferPointer { referenceGELU($0.baseAddress!, count: count) }
        // |x| ≤ 6 and erf within 4e-7: GELU within 0.5 · 6 · 4e-7.
        #expect(maxAbsoluteDifference(fast, reference) <= 1.5e-6)
    }

    @Test("erf8 is within 4e-7 of erff on [-6, 6]")
    func erf() {
        var worst: Float = 0
        for step in stride(from: -6000, through: 6000, by: 8) {
            let lanes = SIMD8<Float>((0..<8).map { Float(step + $0) / 1000 })
            let fast = erf8(lanes)
            for lane in 0..<8 { worst = max(worst, abs(fast[lane] - erff(lanes[lane]))) }
        }
        #expect(worst <= 4e-7)
    }

    @Test("vectorised softmax matches expf-based softmax", arguments: [1, 7, 8, 9, 33, 256])
    func softmax(columnCount: Int) {
        let rowCount = 3
        var fast = Self.values(count: rowCount * columnCount, spread: 20)
        var reference = fast
        fast.withUnsafeMutableBufferPointer {
            softmaxRows($0.baseAddress!, rowCount: rowCount, columnCount: columnCount)
        }
        reference.withUnsafeMutableBufferPointer {
            referenceSoftmaxRows($0.baseAddress!, rowCount: rowCount, columnCount: columnCount)
        }
        #expect(maxAbsoluteDifference(fast, reference) <= 1e-6)
        for row in 0..<rowCount {
            let total = fast[(row * columnCount)..<((row + 1) * columnCount)].reduce(0, +)
            #expect(abs(total - 1) <= 1e-5)
        }
    }
}
