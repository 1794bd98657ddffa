import CMaxSimKernels
import TesseraPlatform
import Testing

@testable import TesseraEncoder

/// The int8 GEMM, quantisation and quantised linear layer of the int8 encoder, every variant this CPU runs
/// against a scalar reference written here from the header's contract.
@Suite("int8 GEMM kernels")
struct Int8KernelTests {
    /// The variants this CPU runs (the scalar one always).
    static let variants: [Int32] = [Int32(TSR_ISA_SCALAR), Int32(TSR_ISA_AVX2), Int32(TSR_ISA_AVX512)]
        .filter { tsr_isa_supported($0) != 0 }

    /// Shapes `(m, n, k)`: odd sizes, a panel and a bit, depths not a multiple of 4, the encoder's own.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 64, 4), (2, 65, 3), (5, 17, 5), (6, 64, 33), (7, 130, 64), (13, 200, 7), (16, 63, 384),
        (50, 129, 385), (23, 384, 1536),
    ]

    /// Σ_k a[i][k] · w[o][k] over the unpadded depth (padding multiplies zero weights).
    static func referenceGEMM(_ a: [UInt8], lda: Int, _ w: [Int8], m: Int, n: Int, k: Int) -> [Int32] {
        var c = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for o in 0..<n {
                var sum: Int32 = 0
                for d in 0..<k { sum += Int32(a[i * lda + d]) * Int32(w[o * k + d]) }
                c[i * n + o] = sum
            }
        }
        return c
    }

    static func pack(_ w: [Int8], n: Int, k: Int) -> (packed: [Int8], compensation: [Int32]) {
        var packed = [Int8](repeating: 0, count: Int(tsr_i8_packed_size(Int32(n), Int32(k))))
        var compensation = [Int32](repeating: 0, count: n)
        tsr_i8_pack_weights(w, Int32(n), Int32(k), &packed, &compensation)
        return (packed, compensation)
    }

    @Test("tsr_i8_gemm equals the reference exactly, every variant, every shape")
    func gemmMatchesReference() {
        var generator = SplitMix64(seed: 0x1d8)
        for (m, n, k) in Self.shapes {
            let lda = Int(tsr_i8_padded_depth(Int32(k))) + 4
            let a = (0..<(m * lda)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &generator) }
            let expected = Self.referenceGEMM(a, lda: lda, w, m: m, n: n, k: k)
            let (packed, compensation) = Self.pack(w, n: n, k: k)
            for o in 0..<n {
                #expect(compensation[o] == 128 * (0..<k).reduce(Int32(0)) { $0 + Int32(w[o * k + $1]) })
            }
            for isa in Self.variants {
                let ldc = n + 3
                var c = [Int32](repeating: -7, count: m * ldc)
                tsr_i8_gemm(isa, Int32(m), Int32(n), Int32(k), a, Int32(lda), packed, &c, Int32(ldc))
                let got = (0..<m).flatMap { i in c[(i * ldc)..<(i * ldc + n)] }
                #expect(got == expected, "isa \(isa), shape \(m)×\(n)×\(k)")
                // Nothing past n in a row is written.
                #expect((0..<m).allSatisfy { i in c[(i * ldc + n)..<((i + 1) * ldc)].allSatisfy { $0 == -7 } })
            }
        }
    }

    @Test("extreme values: all 255 against all ±127 and ±128 weights, no saturation")
    func extremes() {
        let (m, n, k) = (3, 70, 1536)
        let lda = Int(tsr_i8_padded_depth(Int32(k)))
        let a = [UInt8](repeating: 255, count: m * lda)
        for weight in [Int8(127), Int8(-128), Int8(-127)] {
            let w = [Int8](repeating: weight, count: n * k)
            let (packed, _) = Self.pack(w, n: n, k: k)
            for isa in Self.variants {
                var c = [Int32](repeating: 0, count: m * n)
                tsr_i8_gemm(isa, Int32(m), Int32(n), Int32(k), a, Int32(lda), packed, &c, Int32(n))
                #expect(c.allSatisfy { $0 == 255 * Int32(weight) * Int32(k) }, "isa \(isa), weight \(weight)")
            }
        }
    }

    @Test("per-row quantisation: scale max|x|/127, round half to even, shifted by 128, the same bytes everywhere")
    func quantizeRows() {
        var generator = SplitMix64(seed: 0x9a)
        for (m, k) in [(1, 1), (3, 5), (4, 16), (7, 33), (9, 384), (2, 1536)] {
            let ldx = k + 2
            var x = (0..<(m * ldx)).map { _ in Float.random(in: -3...3, using: &generator) }
            // A zero row, a row with a tie (0.5 · 127 / max rounds to even), a row of one sign.
            for d in 0..<k { x[d] = 0 }
            if m > 1 {
                for d in 0..<k { x[ldx + d] = Float(d % 3) - 1 }
                x[ldx] = 2
                if k > 1 { x[ldx + 1] = 2 * 0.5 / 127 * 3 }
            }
            let lda = Int(tsr_i8_padded_depth(Int32(k)))
            var expectedBytes = [UInt8](repeating: 0, count: m * lda)
            var expectedScales = [Float](repeating: 0, count: m)
            for i in 0..<m {
                let row = x[(i * ldx)..<(i * ldx + k)]
                let maximum = row.reduce(Float(0)) { max($0, abs($1)) }
                expectedScales[i] = maximum > 0 ? maximum / 127 : 0
                let multiplier: Float = maximum > 0 ? 127 / maximum : 0
                for d in 0..<lda {
                    let q =
                        d < k
                        ? min(127, max(-127, (row[row.startIndex + d] * multiplier).rounded(.toNearestOrEven))) : 0
                    expectedBytes[i * lda + d] = UInt8(Int(q) + 128)
                }
            }
            #expect(expectedBytes[0..<lda].allSatisfy { $0 == 128 })
            for isa in Self.variants {
                var bytes = [UInt8](repeating: 0, count: m * lda)
                var scales = [Float](repeating: -1, count: m)
                tsr_i8_quantize_rows(isa, x, Int32(m), Int32(k), Int32(ldx), &bytes, Int32(lda), &scales)
                #expect(bytes == expectedBytes, "isa \(isa), \(m)×\(k)")
                #expect(scales == expectedScales, "isa \(isa), \(m)×\(k)")
            }
        }
    }

    @Test("tsr_i8_linear: dequantised, bias and residual added in the documented order, bit for bit")
    func linearMatchesReference() {
        var generator = SplitMix64(seed: 0x11ea)
        for (m, n, k) in Self.shapes {
            let lda = Int(tsr_i8_padded_depth(Int32(k)))
            let a = (0..<(m * lda)).map { _ in UInt8.random(in: 1...255, using: &generator) }
            let w = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &generator) }
            let rowScales = (0..<m).map { _ in Float.random(in: 0.001...0.1, using: &generator) }
            let channelScales = (0..<n).map { _ in Float.random(in: 0.001...0.1, using: &generator) }
            let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &generator) }
            let residual = (0..<(m * n)).map { _ in Float.random(in: -2...2, using: &generator) }
            let (packed, compensation) = Self.pack(w, n: n, k: k)
            let sums = Self.referenceGEMM(a, lda: lda, w, m: m, n: n, k: k)
            for withResidual in [false, true] {
                var expected = [Float](repeating: 0, count: m * n)
                for i in 0..<m {
                    for o in 0..<n {
                        let scale = rowScales[i] * channelScales[o]
                        var value = Float(sums[i * n + o] - compensation[o])
                        value = value * scale
                        value = value + bias[o]
                        if withResidual { value = value + residual[i * n + o] }
                        expected[i * n + o] = value
                    }
                }
                for isa in Self.variants {
                    var out = [Float](repeating: .nan, count: m * n)
                    var scratch = [Int32](repeating: 0, count: 64 * 16)
                    residual.withUnsafeBufferPointer { residual in
                        tsr_i8_linear(
                            isa,
                            Int32(m),
                            Int32(n),
                            Int32(k),
                            a,
                            Int32(lda),
                            rowScales,
                            packed,
                            compensation,
                            channelScales,
                            bias,
                            withResidual ? residual.baseAddress : nil,
                            &out,
                            Int32(n),
                            &scratch
                        )
                    }
                    #expect(out == expected, "isa \(isa), shape \(m)×\(n)×\(k), residual \(withResidual)")
                }
            }
        }
    }

    @Test("QuantizedLinear approximates the float32 layer within the quantisation error")
    func quantizedLinearApproximatesFloat() {
        var generator = SplitMix64(seed: 0x51)
        let (m, n, k) = (9, 70, 96)
        let weight = (0..<(n * k)).map { _ in Float.random(in: -0.2...0.2, using: &generator) }
        let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &generator) }
        let input = (0..<(m * k)).map { _ in Float.random(in: -4...4, using: &generator) }
        let layer = QuantizedLinear(weight: weight, bias: bias, inputDimension: k)
        for isa in Self.variants {
            var output = [Float](repeating: 0, count: m * n)
            let scratch = UnsafeMutableRawPointer.allocate(
                byteCount: PackedLinear.scratchByteCount(rowCount: m, inputDimension: k),
                alignment: 64
            )
            defer { scratch.deallocate() }
            input.withUnsafeBufferPointer { input in
                output.withUnsafeMutableBufferPointer { output in
                    layer.apply(
                        input.baseAddress!,
                        rowCount: m,
                        residual: nil,
                        into: output.baseAddress!,
                        scratch: scratch,
                        isa: isa
                    )
                }
            }
            for i in 0..<m {
                for o in 0..<n {
                    var exact = bias[o]
                    for d in 0..<k { exact += input[i * k + d] * weight[o * k + d] }
                    // Each product's error is at most half a step of each operand: |x|max/254 · |w| +
                    // |w|max/254 · |x| (and their product), summed over k.
                    var bound: Float = 0
                    for d in 0..<k { bound += 4 / 254 * abs(weight[o * k + d]) + 0.2 / 254 * abs(input[i * k + d]) }
                    #expect(abs(output[i * n + o] - exact) <= bound * 1.01 + 1e-4, "isa \(isa), (\(i), \(o))")
                }
            }
        }
    }
}

/// all-MiniLM-L6-v2 at int8: close to float32 on the parity texts, and the same bits on any thread count.
@Suite(
    "int8 encoder",
    .enabled(if: miniLMIsPresent, "models/all-MiniLM-L6-v2 is absent (scripts/fetch-model)")
)
struct Int8EncoderTests {
    /// The documented bound: every token vector of the fixture texts has cosine ≥ 0.98 to float32's (measured
    /// minimum over the first 1,000 SciFact documents: 0.986; mean 0.998).
    static let minimumCosine = 0.98

    @Test("int8 token vectors of the fixture texts are within the documented cosine of float32")
    func closeToFloat32() throws {
        let (worst, identical) = try fixtureAgreement(precision: .int8)
        #expect(worst >= Self.minimumCosine, "worst cosine \(worst)")
        // It is a different computation: the vectors are not float32's.
        #expect(!identical)
    }

    @Test("the int8 forward pass gives the same bits on 1, 2 and 3 threads")
    func threadCountsAgree() throws {
        let fixture = try MiniLMParityFixture.load()
        let tokenizer = try BertTokenizer(modelDirectory: miniLMDirectory)
        let batch = try fixture.texts.prefix(6).map { try tokenizer.encode($0, maxLength: 64).ids }
        var outputs: [[[Float]]] = []
        for threads in [1, 2, 3] {
            let model = try BertModel(modelDirectory: miniLMDirectory, threadCount: threads, precision: .int8)
            outputs.append(try model.forward(batch))
        }
        #expect(outputs[0] == outputs[1])
        #expect(outputs[0] == outputs[2])
    }
}
