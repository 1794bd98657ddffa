import Foundation
import TesseraTestSupport
import Testing

@testable import Tessera

@Suite("Text analysis and BM25")
struct TextSearchTests {
    @Test("Porter stems: the algorithm paper's examples, step by step")
    func porterExamples() {
        let pairs: [(String, String)] = [
            // Step 1a, 1b, 1c.
            ("caresses", "caress"), ("ponies", "poni"), ("ties", "ti"), ("caress", "caress"), ("cats", "cat"),
            ("feed", "feed"), ("agreed", "agre"), ("plastered", "plaster"), ("bled", "bled"),
            ("motoring", "motor"), ("sing", "sing"), ("conflated", "conflat"), ("troubled", "troubl"),
            ("sized", "size"), ("hopping", "hop"), ("tanned", "tan"), ("falling", "fall"), ("hissing", "hiss"),
            ("fizzed", "fizz"), ("failing", "fail"), ("filing", "file"), ("happy", "happi"), ("sky", "sky"),
            // Steps 2–5 (full stems of the paper's step examples).
            ("relational", "relat"), ("conditional", "condit"), ("rational", "ration"),
            ("digitizer", "digit"), ("triplicate", "triplic"), ("formative", "form"), ("formalize", "formal"),
            ("electrical", "electr"), ("hopeful", "hope"), ("goodness", "good"), ("revival", "reviv"),
            ("allowance", "allow"), ("inference", "infer"), ("airliner", "airlin"), ("adjustable", "adjust"),
            ("defensible", "defens"), ("irritant", "irrit"), ("replacement", "replac"), ("adjustment", "adjust"),
            ("dependent", "depend"), ("adoption", "adopt"), ("homologou", "homolog"), ("communism", "commun"),
            ("activate", "activ"), ("angulariti", "angular"), ("homologous", "homolog"), ("effective", "effect"),
            ("bowdlerize", "bowdler"), ("probate", "probat"), ("rate", "rate"), ("cease", "ceas"),
            ("controlling", "control"), ("roll", "roll"), ("generalizations", "gener"), ("oscillators", "oscil"),
        ]
        for (word, stem) in pairs { #expect(PorterStemmer.stem(word) == stem, "\(word)") }
        // Not stemmed: short words, words with digits or non-ASCII letters.
        #expect(PorterStemmer.stem("is") == "is")
        #expect(PorterStemmer.stem("h2o") == "h2o")
    }

    @Test("the analyzer splits, folds, lowercases, drops stop words and stems")
    func analyzer() {
        let analyzer = TextAnalyzer()
        #expect(
            analyzer.terms("The Naïve café's connections, HOPPING-mad; e=mc² in 1905!") == [
                "naiv", "cafe", "s", "connect", "hop", "mad", "e", "mc2", "1905",
            ]
        )
        let plain = TextAnalyzer(foldsDiacritics: false, removesStopWords: false, stems: false)
        #expect(plain.terms("The Naïve café") == ["the", "naïve", "café"])
        #expect(analyzer.terms("   ").isEmpty)
    }

    @Test("BM25 scores equal a brute-force evaluation of the formula on random corpora")
    func bm25MatchesBruteForce() {
        var random = SeededRandom(seed: 17)
        let vocabulary = (0..<30).map { "w\($0)" }
        for round in 0..<5 {
            var documents: [[String]] = []
            var index = BM25Index()
            for document in 0..<40 {
                let length = random.int(in: 0...25)
                let terms = (0..<length).map { _ in vocabulary[random.int(in: 0...(vocabulary.count - 1))] }
                documents.append(terms)
                index.add(document: document, terms: terms)
            }
            // Remove a few, and replace one: statistics follow.
            var removed: Set<Int> = []
            for _ in 0..<4 {
                let document = random.int(in: 0...39)
                index.remove(document: document)
                removed.insert(document)
            }
            let replaced = (0..<12).map { _ in vocabulary[random.int(in: 0...9)] }
            index.add(document: 5, terms: replaced)
            documents[5] = replaced
            removed.remove(5)
            let liveDocuments = (0..<40).filter { !removed.contains($0) }
            let parameters = BM25Parameters(k1: Float(1 + round) * 0.3, b: Float(round) * 0.2)
            let query = (0..<4).map { _ in vocabulary[random.int(in: 0...(vocabulary.count - 1))] } + ["unknown"]
            // Brute force, in Double.
            let n = Double(liveDocuments.count)
            let average = liveDocuments.reduce(0.0) { $0 + Double(documents[$1].count) } / n
            var expected: [Int: Double] = [:]
            for document in liveDocuments {
                var score = 0.0
                for term in query {
                    let df = Double(liveDocuments.filter { documents[$0].contains(term) }.count)
                    guard df > 0 else { continue }
                    let tf = Double(documents[document].filter { $0 == term }.count)
                    guard tf > 0 else { continue }
                    let idf = log(1 + (n - df + 0.5) / (df + 0.5))
                    let k1 = Double(parameters.k1)
                    let b = Double(parameters.b)
                    let length = Double(documents[document].count)
                    let norm = k1 * (1 - b + b * length / average)
                    score += idf * tf * (k1 + 1) / (tf + norm)
                }
                if score > 0 { expected[document] = score }
            }
            let hits = index.search(terms: query, parameters: parameters, limit: 100)
            #expect(hits.count == expected.count, "round \(round)")
            for hit in hits {
                let value = expected[hit.document] ?? -1
                #expect(
                    abs(Double(hit.score) - value) <= 1e-4 * max(1, value),
                    "round \(round), document \(hit.document)"
                )
                #expect(!removed.contains(hit.document))
            }
            #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.score >= $1.score })
            // A filter keeps only allowed documents, and the limit holds.
            let even = index.search(terms: query, parameters: parameters, allowed: { $0 % 2 == 0 }, limit: 3)
            #expect(even.count <= 3 && even.allSatisfy { $0.document % 2 == 0 })
        }
    }

    @Test("collection text search: payload text, filters, and writes visible in the next query")
    func collectionTextSearch() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-text-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let field = VectorField(
            name: "tokens",
            dimension: 4,
            kind: .multivector(comparator: .maxSim),
            elementType: .float32
        )
        let store = try CollectionStore.create(
            at: directory.path,
            configuration: CollectionConfiguration(fields: [field])
        )
        func point(_ id: UInt64, _ title: String, _ text: String, group: Int64) -> Point {
            Point(
                id: .integer(id),
                payload: ["title": .string(title), "text": .string(text), "group": .integer(group)],
                vectors: ["tokens": .flat(values: [1, 0, 0, 0], tokenCount: 1)]
            )
        }
        try store.upsert([
            point(1, "Volcanoes", "Magma rises through the crust and erupts as lava.", group: 0),
            point(2, "Baking bread", "Yeast makes the dough rise in a warm oven.", group: 1),
            point(3, "Lava flows", "Basaltic lava flows are fluid; volcanic eruptions vary.", group: 1),
        ])
        func ids(_ text: String, filter: Filter? = nil) throws -> [UInt64] {
            try store.textSearch(TextSearchRequest(text: text, filter: filter, limit: 10)).map {
                if case .integer(let value) = $0.id { value } else { 0 }
            }
        }
        #expect(try ids("erupting volcano lava") == [3, 1] || ids("erupting volcano lava") == [1, 3])
        #expect(try ids("bread") == [2])
        #expect(try ids("nothing matches this") == [])
        let groupOne = try Filter(json: #"{"must":[{"key":"group","match":{"value":1}}]}"#)
        #expect(try ids("lava", filter: groupOne) == [3])
        // Upsert, replace, delete and payload edits are seen by the next query.
        try store.upsert([point(4, "Sourdough", "A bread leavened by wild yeast.", group: 0)])
        #expect(Set(try ids("bread")) == [2, 4])
        try store.upsert([point(2, "Pasta", "Boil water, add salt.", group: 1)])
        #expect(try ids("bread") == [4])
        try store.delete(ids: [.integer(4)])
        #expect(try ids("bread") == [])
        try store.setPayload(["text": .string("Bread and more bread.")], ids: [.integer(1)])
        #expect(try ids("bread") == [1])
        // Reopened: built again from the stored payloads.
        try store.close()
        let reopened = try CollectionStore.open(at: directory.path)
        #expect(try reopened.textSearch(TextSearchRequest(text: "bread", limit: 5)).map(\.id) == [.integer(1)])
        #expect(throws: TesseraError.self) {
            try reopened.textSearch(TextSearchRequest(text: "x", fields: [], limit: 5))
        }
    }

    @Test("BM25 caught up incrementally scores like a fresh build after inserts, replacements, payload edits, deletes")
    func incrementalCatchUpMatchesRebuild() throws {
        let seed: UInt64 = 0xB325
        print("incremental BM25 seed \(seed)")
        var random = SeededRandom(seed: seed)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-bm25-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let field = VectorField(name: "v", dimension: 2, kind: .dense(distance: .dot), elementType: .float32)
        let store = try CollectionStore.create(
            at: directory.path,
            configuration: CollectionConfiguration(fields: [field]),
            compactionThreshold: 2
        )
        let words = ["lava", "bread", "yeast", "magma", "oven", "crust", "river", "stone", "salt", "water", "rise"]
        func text(_ random: inout SeededRandom) -> String {
            (0..<random.int(in: 0...12)).map { _ in words[random.int(in: 0...(words.count - 1))] }.joined(
                separator: " "
            )
        }
        func point(_ id: UInt64, _ random: inout SeededRandom) -> Point {
            Point(
                id: .integer(id),
                payload: ["title": .string(text(&random)), "text": .string(text(&random))],
                vectors: ["v": .dense([1, 0])]
            )
        }
        let fields = ["title", "text"]
        let analyzer = TextAnalyzer()
        var incremental = TextIndexState(fields: fields, analyzer: analyzer)
        try store.upsert((1...40).map { point($0, &random) })
        incremental.catchUp(with: store.scoringView())
        for step in 0..<40 {
            let before = store.scoringView()
            let live = before.liveSlots.slots.map { before.pointIDs[$0] }
            let existing = live[random.int(in: 0...(live.count - 1))]
            let other = live[random.int(in: 0...(live.count - 1))]
            switch step % 4 {
            case 0:
                try store.upsert([point(UInt64(random.int(in: 1...60)), &random), point(UInt64(100 + step), &random)])
            case 1: try store.setPayload(["text": .string(text(&random))], ids: [existing, other])
            case 2: try store.delete(ids: [existing])
            default: try store.overwritePayload(["title": .string(text(&random))], ids: [existing])
            }
            let view = store.scoringView()
            incremental.catchUp(with: view)
            var fresh = TextIndexState(fields: fields, analyzer: analyzer)
            fresh.catchUp(with: view)
            for query in ["lava bread", "yeast rise rise", "stone", "salt water oven magma"] {
                let request = TextIndexState.Query(terms: analyzer.terms(query), parameters: BM25Parameters())
                let expected = fresh.candidates(for: request, view: view, allowed: nil, limit: 1000)
                let got = incremental.candidates(for: request, view: view, allowed: nil, limit: 1000)
                #expect(got.map(\.slot) == expected.map(\.slot), "step \(step), query \(query)")
                #expect(got.map(\.score) == expected.map(\.score), "step \(step), query \(query)")
                // The store's own cached index answers the same.
                let stored = store.textHits(
                    query,
                    fields: fields,
                    analyzer: analyzer,
                    parameters: BM25Parameters(),
                    view: view,
                    allowed: nil,
                    limit: 1000
                )
                #expect(stored.map(\.slot) == expected.map(\.slot))
                #expect(stored.map(\.score) == expected.map(\.score))
            }
        }
        // Every write was taken in slot by slot: the only full build was the first.
        #expect(incremental.rebuildCount == 1)
    }
}
