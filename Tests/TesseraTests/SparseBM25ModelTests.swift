import Foundation
import Testing

@testable import Tessera

@Suite("Qdrant's built-in BM25 model (qdrant/bm25)")
struct SparseBM25ModelTests {
    /// `Fixtures/snowball-english.tsv`, written by `scripts/snowball-fixture.py` from the Snowball project's
    /// English stemmer (the Rust crate Qdrant uses) and the reference MurmurHash3.
    @Test("stems and token dimensions equal the reference implementations' on 3,295 corpus words")
    func stemsAndDimensions() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/snowball-english", withExtension: "tsv"))
        let rows = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        #expect(rows.count > 3000)
        var wrongStems: [String] = []
        var wrongDimensions: [String] = []
        for row in rows {
            let fields = row.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            try #require(fields.count == 3, "bad fixture row \(row)")
            let stem = SnowballEnglishStemmer.stem(fields[0])
            if stem != fields[1] { wrongStems.append("\(fields[0]) → \(stem), expected \(fields[1])") }
            let dimension = SparseBM25Model.dimension(of: fields[0])
            if String(dimension) != fields[2] { wrongDimensions.append("\(fields[0]) → \(dimension)") }
        }
        #expect(wrongStems.isEmpty, "\(wrongStems.prefix(20))")
        #expect(wrongDimensions.isEmpty, "\(wrongDimensions.prefix(20))")
    }

    @Test("a document holds each token's saturated frequency, a query each token once; stop words are dropped")
    func vectors() throws {
        let model = SparseBM25Model()
        let text = "The cats are running, and the CAT ran."
        #expect(model.tokens(text) == ["cat", "run", "cat", "ran"])
        let document = model.documentVector(text)
        func expected(_ count: Double, length: Double) -> Float {
            Float(count * 2.2 / (count + 1.2 * (0.25 + 0.75 * length / 256)))
        }
        let want: [String: Float] = [
            "cat": expected(2, length: 4), "run": expected(1, length: 4), "ran": expected(1, length: 4),
        ]
        #expect(document.indices.count == 3)
        for (token, value) in want {
            let dimension = SparseBM25Model.dimension(of: token)
            let at = try #require(document.indices.firstIndex(of: dimension), "\(token)")
            #expect(abs(document.values[at] - value) < 1e-6, "\(token): \(document.values[at]) vs \(value)")
        }
        let query = model.queryVector("cat cats CAT running")
        #expect(query.indices == [SparseBM25Model.dimension(of: "cat"), SparseBM25Model.dimension(of: "run")].sorted())
        #expect(query.values == [1, 1])
        #expect(model.documentVector("the and of").isEmpty)
        #expect(model.queryVector("").isEmpty)
    }

    @Test("options: k, b, avg_len, language none, custom stop words, no stemmer, token lengths")
    func options() throws {
        let plain = try SparseBM25Model(options: ["language": "none"])
        #expect(plain.tokens("The cats are running") == ["the", "cats", "are", "running"])
        let custom = try SparseBM25Model(options: [
            "stopwords": ["custom": ["Cats"]], "stemmer": ["type": "none"], "min_token_len": 4, "max_token_len": 6,
        ])
        #expect(custom.tokens("The cats are running in tents") == ["tents"])
        let kept = try SparseBM25Model(options: ["lowercase": false, "stopwords": ["languages": ["english"]]])
        #expect(kept.tokens("The cats") == ["The", "cat"])
        let tuned = try SparseBM25Model(options: ["k": 2, "b": 0, "avg_len": 10.5, "tokenizer": "whitespace"])
        #expect(tuned.tokens("state-of-the-art cats") == ["state-of-the-art", "cat"])
        let vector = tuned.documentVector("cats cats")
        #expect(vector.values == [Float(2.0 * 3 / (2 + 2))])
    }

    @Test("unsupported or bad options are refused naming the option")
    func refusals() {
        let cases: [(JSONObject, String)] = [
            (["ascii_folding": true], "ascii_folding"), (["language": "french"], "language"),
            (["tokenizer": "multilingual"], "tokenizer"), (["k": -1], "k"), (["b": 1.5], "b"),
            (["avg_len": 0], "avg_len"), (["stemmer": ["type": "snowball", "language": "german"]], "stemmer"),
            (["stopwords": "french"], "stopwords"), (["min_token_len": "3"], "min_token_len"), (["model": 1], "model"),
        ]
        for (options, option) in cases {
            #expect(throws: TesseraError.self, "\(options)") { try SparseBM25Model(options: options) }
            do {
                _ = try SparseBM25Model(options: options)
            } catch {
                #expect(error.message.contains("'\(option)'"), "\(error.message)")
                #expect(error.location.field == "options.\(option)", "\(options)")
            }
        }
    }
}
