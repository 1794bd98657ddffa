import CMaxSimKernels
import TesseraPlatform
import Testing

@testable import TesseraEncoder

/// The packed-weight float32 and bfloat16 projections of the encoder, every variant this CPU runs, against
/// references written here from the header's contract.
@Suite("Packed float GEMM kernels")
struct FloatGEMMKernelTests {
    /// Shapes `(m, n, k)`: odd sizes, a panel and a bit, odd depths, the encoder's own.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 64, 4), (2, 65, 3), (5, 17, 5), (6, 64, 33), (7, 130, 64), (13, 200, 7), (16, 63, 384),
        (50, 129, 385), (23, 384, 1536),
    ]

    /// The float32 variants: scalar, and AVX-512 where the CPU has it.
    static let floatVariants: [Int32] = [Int32(TSR_ISA_SCALAR), Int32(TSR_ISA_AVX512)]
        .filter { tsr_isa_supported($0) != 0 }

    /// Random `(input, weight, bias, residual)` for a shape.
    static func operands(
        m: Int,
        n: Int,
        k: Int,
        using generator: inout SplitMix64
    ) -> ([Float], [Float], [Float], [Float]) {
        let input = (0..<(m * k)).map { _ in Float.random(in: -3...3, using: &generator) }
        let weight = (0..<(n * k)).map { _ in Float.random(in: -0.3...0.3, using: &generator) }
        let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &generator) }
        let residual = (0..<(m * n)).map { _ in Float.random(in: -2...2, using: &generator) }
        return (input, weight, bias, residual)
    }

    @Test("tsr_f32_linear: one fused multiply-add chain, then bias, then residual, bit for bit in every variant")
    func floatLinearMatchesReference() {
        var generator = SplitMix64(seed: 0xf32)
        for (m, n, k) in Self.shapes {
            let (input, weight, bias, residual) = Self.operands(m: m, n: n, k: k, using: &generator)
            var packed = [Float](repeating: .nan, count: Int(tsr_f32_packed_count(Int32(n), Int32(k))))
            tsr_f32_pack_weights(weight, Int32(n), Int32(k), &packed)
            for withResidual in [false, true] {
                var expected = [Float](repeating: 0, count: m * n)
                for i in 0..<m {
                    for o in 0..<n {
                        var sum: Float = 0
                        for d in 0..<k { sum.addProduct(input[i * k + d], weight[o * k + d]) }
                        var value = sum + bias[o]
                        if withResidual { value = value + residual[i * n + o] }
                        expected[i * n + o] = value
                    }
                }
                for isa in Self.floatVariants {
                    let ldo = n + 2
                    var out = [Float](repeating: -7, count: m * ldo)
                    var paddedResidual = [Float](repeating: 0, count: m * ldo)
                    for i in 0..<m {
                        for o in 0..<n { paddedResidual[i * ldo + o] = residual[i * n + o] }
                    }
                    paddedResidual.withUnsafeBufferPointer { residualBuffer in
                        tsr_f32_linear(
                            isa,
                            Int32(m),
                            Int32(n),
                            Int32(k),
                            input,
                            Int32(k),
                            packed,
                            bias,
                            withResidual ? residualBuffer.baseAddress : nil,
                            &out,
                            Int32(ldo)
                        )
                    }
                    let got = (0..<m).flatMap { i in out[(i * ldo)..<(i * ldo + n)] }
                    #expect(got == expected, "isa \(isa), shape \(m)×\(n)×\(k), residual \(withResidual)")
                    #expect((0..<m).allSatisfy { i in out[(i * ldo + n)..<((i + 1) * ldo)].allSatisfy { $0 == -7 } })
                }
            }
        }
    }

    /// bfloat16 rounding written from its definition: the nearest bfloat16, ties to even; subnormals to signed
    /// zero; NaN stays NaN.
    static func referenceRound(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x0040 }
        if value.isSubnormal || value == 0 { return UInt16(bits >> 16) & 0x8000 }
        let upper = UInt16(bits >> 16)
        let remainder = bits & 0xFFFF
        if remainder > 0x8000 || (remainder == 0x8000 && upper & 1 == 1) { return upper &+ 1 }
        return upper
    }

    @Test("bfloat16 rounding: nearest, ties to even, subnormals to zero, NaN kept, the same in every variant")
    func bfloat16Rounding() {
        var values: [Float] = [
            0, -0, 1, -1, 1.00390625, 1.005859375, 1.001953125, 1.0058594, 3.4028235e38, -3.4028235e38, .infinity,
            -.infinity, .nan, Float.leastNonzeroMagnitude, -Float.leastNormalMagnitude / 2, Float.leastNormalMagnitude,
        ]
        var generator = SplitMix64(seed: 0xbf16)
        values += (0..<997).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator)) }
        for value in values {
            let rounded = tsr_bf16_round(value)
            if value.isNaN {
                #expect(tsr_bf16_widen(rounded).isNaN)
            } else {
                #expect(rounded == Self.referenceRound(value), "\(value)")
            }
        }
        // The ties: 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷ and goes to the even 1; 1 + 3·2⁻⁸ goes up.
        #expect(tsr_bf16_widen(tsr_bf16_round(1.00390625)) == 1)
        #expect(tsr_bf16_widen(tsr_bf16_round(1.01171875)) == 1.015625)
        let finite = values.filter { !$0.isNaN }
        for isa in [Int32(TSR_ISA_SCALAR), Int32(TSR_ISA_AVX512)] {
            for k in [1, 15, 16, 17, 33] {
                let m = finite.count / k
                let lda = Int(tsr_bf16_padded_depth(Int32(k))) + 2
                var converted = [UInt16](repeating: 0xFFFF, count: m * lda)
                tsr_bf16_convert_rows(isa, finite, Int32(m), Int32(k), Int32(k), &converted, Int32(lda))
                for i in 0..<m {
                    for d in 0..<lda {
                        let expected = d < k ? Self.referenceRound(finite[i * k + d]) : 0
                        #expect(converted[i * lda + d] == expected, "isa \(isa), k \(k), row \(i), column \(d)")
                    }
                }
            }
        }
    }

    @Test("tsr_bf16_linear: the scalar variant equals the documented chain; vdpbf16ps within float32 rounding")
    func bfloat16LinearMatchesReference() {
        var generator = SplitMix64(seed: 0xb16)
        for (m, n, k) in Self.shapes {
            let (input, weight, bias, residual) = Self.operands(m: m, n: n, k: k, using: &generator)
            let depth = Int(tsr_bf16_padded_depth(Int32(k)))
            var packed = [UInt16](repeating: 0xFFFF, count: Int(tsr_bf16_packed_count(Int32(n), Int32(k))))
            tsr_bf16_pack_weights(weight, Int32(n), Int32(k), &packed)
            var activations = [UInt16](repeating: 0, count: m * depth)
            tsr_bf16_convert_rows(
                Int32(TSR_ISA_SCALAR),
                input,
                Int32(m),
                Int32(k),
                Int32(k),
                &activations,
                Int32(depth)
            )
            let x = input.map { tsr_bf16_widen(tsr_bf16_round($0)) }
            let w = weight.map { tsr_bf16_widen(tsr_bf16_round($0)) }
            for withResidual in [false, true] {
                var expected = [Float](repeating: 0, count: m * n)
                var magnitude = [Float](repeating: 0, count: m * n)
                for i in 0..<m {
                    for o in 0..<n {
                        var sum: Float = 0
                        var pair = 0
                        while 2 * pair < k {
                            if 2 * pair + 1 < k { sum.addProduct(x[i * k + 2 * pair + 1], w[o * k + 2 * pair + 1]) }
                            sum.addProduct(x[i * k + 2 * pair], w[o * k + 2 * pair])
                            pair += 1
                        }
                        var value = sum + bias[o]
                        if withResidual { value = value + residual[i * n + o] }
                        expected[i * n + o] = value
                        magnitude[i * n + o] =
                            (0..<k).reduce(abs(bias[o])) { $0 + abs(x[i * k + $1] * w[o * k + $1]) }
                            + (withResidual ? abs(residual[i * n + o]) : 0)
                    }
                }
                for isa in [Int32(TSR_ISA_SCALAR), Int32(TSR_ISA_AVX512)] {
                    var out = [Float](repeating: .nan, count: m * n)
                    residual.withUnsafeBufferPointer { residualBuffer in
                        tsr_bf16_linear(
                            isa,
                            Int32(m),
                            Int32(n),
                            Int32(k),
                            activations,
                            Int32(depth),
                            packed,
                            bias,
                            withResidual ? residualBuffer.baseAddress : nil,
                            &out,
                            Int32(n)
                        )
                    }
                    if isa == Int32(TSR_ISA_SCALAR) || tsr_bf16_supported() == 0 {
                        #expect(out == expected, "isa \(isa), shape \(m)×\(n)×\(k), residual \(withResidual)")
                    } else {
                        // Hardware may associate a pair's two products differently: a few float32 ulps of the
                        // sum of magnitudes.
                        for index in out.indices {
                            #expect(
                                abs(out[index] - expected[index]) <= 4 * Float.ulpOfOne * magnitude[index] + 1e-30,
                                "shape \(m)×\(n)×\(k), index \(index)"
                            )
                        }
                    }
                }
            }
        }
    }
}

/// all-MiniLM-L6-v2 at bfloat16 where the CPU has AVX512_BF16; a clear refusal where it does not.
@Suite(
    "bf16 encoder",
    .enabled(if: miniLMIsPresent, "models/all-MiniLM-L6-v2 is absent (scripts/fetch-model)")
)
struct BFloat16EncoderTests {
    /// The documented bound: every token vector of the fixture texts has cosine ≥ 0.999 to float32's (measured
    /// minimum over the first 300 SciFact documents: 0.9998).
    static let minimumCosine = 0.999

    @Test("bf16 token vectors of the fixture texts are within the documented cosine of float32, or bf16 is refused")
    func closeToFloat32() throws {
        guard BertModel.supports(.bfloat16) else {
            #expect(throws: EncoderError.self) {
                _ = try TokenEncoder(modelDirectory: miniLMDirectory, precision: .bfloat16)
            }
            do {
                _ = try BertModel(modelDirectory: miniLMDirectory, precision: .bfloat16)
            } catch {
                #expect(error.code == .unsupportedConfiguration)
                #expect(error.message.contains("AVX512_BF16"))
            }
            return
        }
        let (worst, identical) = try fixtureAgreement(precision: .bfloat16)
        #expect(worst >= Self.minimumCosine, "worst cosine \(worst)")
        #expect(!identical)
    }

    @Test("a batch of more tokens than one group holds gives every sequence the bits it gets alone")
    func groupsAreIndependent() throws {
        var generator = SplitMix64(seed: 0x9009)
        // Eleven sequences of 180–300 tokens: more than one group of `groupTokenLimit` tokens holds.
        let batch: [[Int32]] = (0..<11).map { _ in
            let length = Int.random(in: 180...300, using: &generator)
            return [101] + (0..<(length - 2)).map { _ in Int32.random(in: 1000..<30000, using: &generator) } + [102]
        }
        #expect(batch.reduce(0) { $0 + $1.count } > BertModel.groupTokenLimit)
        let precisions: [EncoderPrecision] =
            BertModel.supports(.bfloat16) ? [.float32, .bfloat16, .int8] : [.float32, .int8]
        for precision in precisions {
            let model = try BertModel(modelDirectory: miniLMDirectory, threadCount: 2, precision: precision)
            let together = try model.forward(batch)
            for (index, sequence) in batch.enumerated() {
                #expect(try model.forward([sequence])[0] == together[index], "\(precision), sequence \(index)")
            }
        }
    }

    @Test("the bf16 and float32 forward passes give the same bits on 1, 2 and 3 threads")
    func threadCountsAgree() throws {
        let fixture = try MiniLMParityFixture.load()
        let tokenizer = try BertTokenizer(modelDirectory: miniLMDirectory)
        let batch = try fixture.texts.prefix(6).map { try tokenizer.encode($0, maxLength: 64).ids }
        let precisions: [EncoderPrecision] = BertModel.supports(.bfloat16) ? [.float32, .bfloat16] : [.float32]
        for precision in precisions {
            var outputs: [[[Float]]] = []
            for threads in [1, 2, 3] {
                let model = try BertModel(modelDirectory: miniLMDirectory, threadCount: threads, precision: precision)
                outputs.append(try model.forward(batch))
            }
            #expect(outputs[0] == outputs[1], "\(precision)")
            #expect(outputs[0] == outputs[2], "\(precision)")
        }
    }
}
