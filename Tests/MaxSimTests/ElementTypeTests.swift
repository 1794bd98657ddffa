import MaxSim
import TesseraTestSupport
import Testing

@Suite("Element types")
struct ElementTypeTests {
    @Test("BFloat16 rounds to nearest even and converts back exactly")
    func bfloat16Rounding() {
        #expect(BFloat16(1.0).bitPattern == 0x3F80)
        #expect(BFloat16(1.0).floatValue == 1.0)
        // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to even (1.0).
        #expect(BFloat16(1 + 0x1p-8).floatValue == 1.0)
        // 1 + 3 · 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
        #expect(BFloat16(1 + 3 * 0x1p-8).floatValue == 1 + 0x1p-6)
        #expect(BFloat16(Float.infinity).floatValue == .infinity)
        #expect(BFloat16(Float.nan).floatValue.isNaN)
        #expect(BFloat16(-0.0).bitPattern == 0x8000)
        var random = SeededRandom(seed: 5)
        for _ in 0..<10_000 {
            let value = random.signedUnit() * 1000
            let rounded = BFloat16(value).floatValue
            #expect(abs(rounded - value) <= abs(value) * 0x1p-8)
        }
    }

    @Test("int8 quantisation error is at most half a step per value")
    func int8RoundTrip() {
        var random = SeededRandom(seed: 6)
        let dimension = 33
        let values = random.signedUnits(40 * dimension)
        let (quantized, scales) = Int8Quantizer.quantize(values, dimension: dimension)
        for index in values.indices {
            let scale = scales[index / dimension]
            let restored = Float(quantized[index]) * scale
            #expect(abs(restored - values[index]) <= scale / 2 * (1 + 1e-6))
        }
        let zeros = Int8Quantizer.quantize([Float](repeating: 0, count: 4), dimension: 4)
        #expect(zeros.scales == [1])
        #expect(zeros.values == [0, 0, 0, 0])
    }

    @Test("int8 documents score within the documented error of Float32 documents")
    func int8AgainstFloat32() throws {
        var random = SeededRandom(seed: 8)
        let dimension = 128
        let rows = (0..<50).map { _ in
            MaxSimTestData.rows(random.int(in: 20...200), dimension: dimension, random: &random)
        }
        let query = try Multivector(
            MaxSimTestData.rows(32, dimension: dimension, random: &random),
            dimension: dimension
        )
        let kernel = MaxSimKernel(threadCount: 2)
        let exact = try kernel.scores(query: query, documents: Multivectors(float32: rows, dimension: dimension)).scores
        let int8 = try kernel.scores(
            query: query,
            documents: Multivectors(float32: rows, dimension: dimension, elementType: .int8)
        ).scores
        // Each similarity moves by at most Σ_k |q_k| · s_d/2 + |d_k| · s_q/2 (both sides quantised); with values in
        // [-1, 1) and dimension 128 that is at most 128 · (1/127) per query token.
        for (a, b) in zip(exact, int8) { #expect(abs(a - b) <= 32 * 128 / 127) }
        let meanError = zip(exact, int8).map { abs($0 - $1) }.reduce(0, +) / Float(exact.count)
        #expect(meanError < 0.5)
    }
}
