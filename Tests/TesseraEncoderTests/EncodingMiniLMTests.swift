import TesseraEncoder
import Testing

/// all-MiniLM-L6-v2 end to end: our tokenizer's ids and the plain profile's output against the reference.
@Suite(
    "all-MiniLM-L6-v2 encoding",
    .enabled(if: miniLMIsPresent, "models/all-MiniLM-L6-v2 is absent (scripts/fetch-model)")
)
struct EncodingMiniLMTests {
    @Test("our tokenizer gives the reference ids for the parity texts")
    func tokenizerIDs() throws {
        let fixture = try MiniLMParityFixture.load()
        let tokenizer = try BertTokenizer(modelDirectory: miniLMDirectory)
        for (index, text) in fixture.texts.enumerated() {
            let ids = try tokenizer.encode(text, maxLength: fixture.maxLengths[index]).ids
            #expect(ids == fixture.ids[index], "text \(index)")
        }
    }

    @Test("plain profile: pooled vector and normalised token vectors match the reference")
    func plainProfile() throws {
        let fixture = try MiniLMParityFixture.load()
        let encoder = try TokenEncoder(modelDirectory: miniLMDirectory)
        // The untruncated texts: the plain profile's 256-token limit does not cut them.
        let indices = fixture.maxLengths.indices.filter { fixture.maxLengths[$0] == nil }
        let encoded = try encoder.encodeDocuments(indices.map { fixture.texts[$0] })
        for (position, index) in indices.enumerated() {
            let result = encoded[position]
            #expect(result.ids == fixture.ids[index])
            #expect(maxAbsoluteDifference(result.pooled, fixture.pooled[index]) <= 1e-5)
            var expected = fixture.lastHiddenState[index]
            for row in 0..<result.tokenCount {
                let slice = expected[(row * 384)..<((row + 1) * 384)]
                let norm = slice.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
                for column in 0..<384 { expected[row * 384 + column] /= norm }
            }
            #expect(maxAbsoluteDifference(result.vectors, expected) <= 1e-5)
        }
    }
}
