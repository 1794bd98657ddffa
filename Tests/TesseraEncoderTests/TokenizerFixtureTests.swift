import Foundation
import TesseraEncoder
import Testing

/// Token ids, tokens and offsets against Hugging Face `tokenizers` (fixture written by
/// scripts/make-tokenizer-fixture.py from all-MiniLM-L6-v2's tokenizer.json).
@Suite("Tokenizer parity with Hugging Face tokenizers")
struct TokenizerFixtureTests {
    struct Case: Decodable {
        var text: String
        var ids: [Int32]
        var tokens: [String]
        var offsets: [[Int]?]
        var ids_max16: [Int32]?
    }

    struct Fixture: Decodable {
        var model: String
        var cases: [Case]
    }

    static let modelDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("models/all-MiniLM-L6-v2").path
    static let modelIsPresent = FileManager.default.fileExists(atPath: modelDirectory + "/tokenizer.json")

    static func fixture() throws -> Fixture {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/tokenizer-cases", withExtension: "json"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    @Test(
        "ids, tokens and byte offsets equal tokenizers' on every fixture string",
        .enabled(if: modelIsPresent, "needs models/all-MiniLM-L6-v2 (make test fetches it)")
    )
    func fixtureCases() throws {
        let fixture = try Self.fixture()
        #expect(fixture.cases.count >= 300)
        let tokenizer = try BertTokenizer(modelDirectory: Self.modelDirectory)
        var mismatches = 0
        for (index, testCase) in fixture.cases.enumerated() {
            let encoded = try tokenizer.encode(testCase.text)
            let offsets = encoded.offsets.map { $0.map { [$0.lowerBound, $0.upperBound] } }
            if encoded.ids != testCase.ids || encoded.tokens != testCase.tokens || offsets != testCase.offsets {
                mismatches += 1
                Issue.record(
                    """
                    case \(index) \(testCase.text.debugDescription):
                      ids \(encoded.ids) expected \(testCase.ids)
                      tokens \(encoded.tokens) expected \(testCase.tokens)
                      offsets \(offsets) expected \(testCase.offsets)
                    """
                )
            }
            if let truncated = testCase.ids_max16 {
                #expect(try tokenizer.encode(testCase.text, maxLength: 16).ids == truncated, "case \(index) max 16")
            }
        }
        #expect(mismatches == 0)
    }

    @Test(
        "vocab.txt with tokenizer_config.json gives the same ids as tokenizer.json",
        .enabled(if: modelIsPresent, "needs models/all-MiniLM-L6-v2 (make test fetches it)")
    )
    func vocabTextLoading() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-vocab-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["vocab.txt", "tokenizer_config.json"] {
            try FileManager.default.copyItem(
                atPath: Self.modelDirectory + "/" + name,
                toPath: folder.appendingPathComponent(name).path
            )
        }
        let fromVocab = try BertTokenizer(modelDirectory: folder.path)
        let fromJSON = try BertTokenizer(modelDirectory: Self.modelDirectory)
        #expect(fromVocab.vocabularySize == fromJSON.vocabularySize)
        for testCase in try Self.fixture().cases.prefix(150) {
            #expect(try fromVocab.encode(testCase.text).ids == testCase.ids, "\(testCase.text.debugDescription)")
        }
    }
}
