import CMaxSimKernels
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

    /// The element-wise variants this CPU can run.
    static let variants: [Int32] = [TSR_ISA_SCALAR, TSR_ISA_AVX2, TSR_ISA_AVX512].map { Int32($0) }
        .filter { tsr_isa_supported($0) != 0 }

    @Test("GELU matches erff-based GELU in every variant", arguments: [0, 1, 7, 8, 9, 17, 128, 1536])
    func gelu(count: Int) {
        let input = Self.values(count: count, spread: 6)
        var reference = input
        reference.withUnsafeMutableBufferPointer { referenceGELU($0.baseAddress!, count: count) }
        for isa in Self.variants {
            var fast = input
            fast.withUnsafeMutableBufferPointer { applyGELU($0.baseAddress!, count: count, isa: isa) }
            // |x| ≤ 6 and erf within 4e-7: GELU within 0.5 · 6 · 4e-7.
            #expect(maxAbsoluteDifference(fast, reference) <= 1.5e-6, "variant \(isa)")
        }
    }

    @Test("GELU is within 1.5e-6 of erff's on a dense grid of [-8, 8], the same bits in every variant")
    func geluGrid() {
        let input = (-8000...8000).map { Float($0) / 1000 }
        var reference = input
        reference.withUnsafeMutableBufferPointer { referenceGELU($0.baseAddress!, count: input.count) }
        var scalar = input
        scalar.withUnsafeMutableBufferPointer {
            applyGELU($0.baseAddress!, count: input.count, isa: Int32(TSR_ISA_SCALAR))
        }
        #expect(maxAbsoluteDifference(scalar, reference) <= 1.5e-6)
        for isa in Self.variants {
            var fast = input
            fast.withUnsafeMutableBufferPointer { applyGELU($0.baseAddress!, count: input.count, isa: isa) }
            #expect(fast == scalar, "variant \(isa)")
        }
    }

    @Test("softmax matches expf-based softmax in every variant", arguments: [1, 7, 8, 9, 16, 17, 33, 256])
    func softmax(columnCount: Int) {
        let rowCount = 3
        let input = Self.values(count: rowCount * columnCount, spread: 20)
        var reference = input
        reference.withUnsafeMutableBufferPointer {
            referenceSoftmaxRows($0.baseAddress!, rowCount: rowCount, columnCount: columnCount)
        }
        for isa in Self.variants {
            var fast = input
            fast.withUnsafeMutableBufferPointer {
                softmaxRows($0.baseAddress!, rowCount: rowCount, columnCount: columnCount, isa: isa)
            }
            #expect(maxAbsoluteDifference(fast, reference) <= 1e-6, "variant \(isa)")
            for row in 0..<rowCount {
                let total = fast[(row * columnCount)..<((row + 1) * columnCount)].reduce(0, +)
                #expect(abs(total - 1) <= 1e-5, "variant \(isa)")
            }
        }
    }
}
