import Foundation
import TesseraEncoder
import Testing

/// WordPiece behaviour on a tiny hand-made vocabulary (no model needed).
@Suite("Tokenizer on a tiny vocabulary")
struct TokenizerTests {
    static let vocabulary = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "able", "cafe", "run",
        "##ning", "##n", "!", ",", "the", "a", "##b", "##c", "東", "京",
    ]

    func tokenizer(lowercase: Bool = true) throws -> BertTokenizer {
        try BertTokenizer(vocabulary: Self.vocabulary, lowercase: lowercase)
    }

    @Test("greedy longest match with ## continuation pieces")
    func greedyLongestMatch() throws {
        let result = try tokenizer().encode("unaffable running")
        #expect(result.tokens == ["[CLS]", "un", "##aff", "##able", "run", "##ning", "[SEP]"])
        #expect(result.ids == [2, 5, 6, 7, 11, 12, 3])
    }

    @Test("a word with an unmatchable part becomes one [UNK]; so does a word over 100 characters")
    func unknownWords() throws {
        let tokenizer = try tokenizer()
        #expect(try tokenizer.encode("unx the").tokens == ["[CLS]", "[UNK]", "the", "[SEP]"])
        let long = "a" + String(repeating: "b", count: 100)
        #expect(try tokenizer.encode(long).tokens == ["[CLS]", "[UNK]", "[SEP]"])
        let limit = "a" + String(repeating: "b", count: 99)
        #expect(try tokenizer.encode(limit).count == 102)
    }

    @Test("punctuation is split off; CJK ideographs are single words")
    func pretokenization() throws {
        let tokenizer = try tokenizer()
        #expect(try tokenizer.encode("the,a!").tokens == ["[CLS]", "the", ",", "a", "!", "[SEP]"])
        #expect(try tokenizer.encode("東京").tokens == ["[CLS]", "東", "京", "[SEP]"])
    }

    @Test("truncation keeps [CLS] and [SEP] within maxLength")
    func truncation() throws {
        let tokenizer = try tokenizer()
        let result = try tokenizer.encode("the a the a the a", maxLength: 4)
        #expect(result.tokens == ["[CLS]", "the", "a", "[SEP]"])
        #expect(throws: EncoderError.self) { try tokenizer.encode("the", maxLength: 1) }
    }

    @Test("empty and whitespace-only text give [CLS] [SEP]")
    func emptyText() throws {
        let tokenizer = try tokenizer()
        #expect(try tokenizer.encode("").tokens == ["[CLS]", "[SEP]"])
        #expect(try tokenizer.encode(" \t\n ").tokens == ["[CLS]", "[SEP]"])
    }

    @Test("offsets slice the original text, through accent stripping and lowercasing")
    func offsets() throws {
        let text = "Café, UNAFFABLE!"
        let result = try tokenizer().encode(text)
        #expect(result.tokens == ["[CLS]", "cafe", ",", "un", "##aff", "##able", "!", "[SEP]"])
        let bytes = Array(text.utf8)
        let slices = result.offsets.map { range in range.map { String(decoding: bytes[$0], as: UTF8.self) } }
        #expect(slices == [nil, "Café", ",", "UN", "AFF", "ABLE", "!", nil])
    }

    @Test("without lowercasing, accents are kept and case matters")
    func caseSensitive() throws {
        let result = try tokenizer(lowercase: false).encode("The the")
        #expect(result.tokens == ["[CLS]", "[UNK]", "the", "[SEP]"])
    }

    @Test("a literal [MASK] in the text is the mask token")
    func addedTokens() throws {
        let result = try tokenizer().encode("the[MASK]a")
        #expect(result.tokens == ["[CLS]", "the", "[MASK]", "a", "[SEP]"])
        #expect(result.offsets[2] == 3..<9)
    }

    @Test("invalid UTF-8 is an error naming the byte offset")
    func invalidUTF8() throws {
        let tokenizer = try tokenizer()
        #expect(try tokenizer.encode(utf8: Array("the a".utf8)).tokens == ["[CLS]", "the", "a", "[SEP]"])
        for (bytes, offset) in [
            ([0x74, 0x68, 0xFF], 2), ([0x61, 0xC3], 1), ([0xE2, 0x28, 0xA1], 1), ([0xED, 0xA0, 0x80], 0),
        ] {
            do {
                _ = try tokenizer.encode(utf8: bytes.map(UInt8.init))
                Issue.record("expected an error for \(bytes)")
            } catch {
                #expect(error.code == .invalidText)
                #expect(error.location.offset == offset, "\(bytes): \(error)")
            }
        }
    }

    @Test("loading errors name the missing file and the missing token")
    func loadingErrors() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-empty-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            _ = try BertTokenizer(modelDirectory: folder.path)
            Issue.record("expected a missing-file error")
        } catch {
            #expect(error.code == .missingFile)
            #expect(error.location.path?.hasSuffix("vocab.txt") == true)
        }
        do {
            _ = try BertTokenizer(vocabulary: ["[CLS]", "[SEP]"])
            Issue.record("expected a missing-token error")
        } catch {
            #expect(error.message.contains("[UNK]"))
        }
    }
}
