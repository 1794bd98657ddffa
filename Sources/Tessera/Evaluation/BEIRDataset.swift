import Foundation

/// A retrieval data set in BEIR's layout: `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`.
public struct BEIRDataset: Sendable {
    /// A corpus document.
    public struct Document: Sendable, Equatable {
        /// The document id (`_id`).
        public var id: String
        /// The title (may be empty).
        public var title: String
        /// The body text.
        public var text: String
        /// The record's `metadata` object (empty when it has none); `tessera index` stores it as the payload.
        public var metadata: JSONObject = [:]

        /// The text a model encodes: `title + " " + text` (as the BEIR evaluations do), or the body alone.
        public var fullText: String { title.isEmpty ? text : title + " " + text }
    }

    /// A query.
    public struct Query: Sendable, Equatable {
        /// The query id (`_id`).
        public var id: String
        /// The query text.
        public var text: String
    }

    /// The documents, in file order.
    public var documents: [Document]
    /// The queries that have judgements in the split, in file order.
    public var queries: [Query]
    /// Relevance judgements: query id → document id → grade.
    public var judgements: RetrievalMetrics.Judgements

    /// Reads the corpus of a BEIR folder (no queries or judgements).
    /// - Parameter directory: the folder holding `corpus.jsonl`.
    /// - Returns: the documents, in file order.
    /// - Throws: `TesseraError` naming the file and line of the first malformed record.
    public static func readCorpus(directory: String) throws(TesseraError) -> [Document] {
        let path = URL(fileURLWithPath: directory).appendingPathComponent("corpus.jsonl").path
        var documents: [Document] = []
        try forEachJSONLine(path: path) { (object, line) throws(TesseraError) in
            let id = try stringField(object, "_id", path: path, line: line)
            let text = try stringField(object, "text", path: path, line: line)
            let title = object["title"] as? String ?? ""
            var metadata: JSONObject = [:]
            if let value = object["metadata"] as? [String: Any], !value.isEmpty,
                let data = try? JSONSerialization.data(withJSONObject: value),
                case .object(let decoded)? = try? JSONValue.parse(utf8: data)
            {
                metadata = decoded
            }
            documents.append(Document(id: id, title: title, text: text, metadata: metadata))
        }
        return documents
    }

    /// Reads a BEIR folder.
    /// - Parameters:
    ///   - directory: the folder holding `corpus.jsonl`, `queries.jsonl` and `qrels/`.
    ///   - split: the judgement split (`test`, `dev`, `train`).
    ///   - includeCorpus: read the corpus too (evaluation of an indexed collection does not need it).
    /// - Throws: `TesseraError` naming the file and line of the first malformed record.
    public init(directory: String, split: String = "test", includeCorpus: Bool = true) throws(TesseraError) {
        let folder = URL(fileURLWithPath: directory)
        documents = includeCorpus ? try Self.readCorpus(directory: directory) : []
        let qrelsPath = folder.appendingPathComponent("qrels/\(split).tsv").path
        guard let qrelsData = FileManager.default.contents(atPath: qrelsPath) else {
            throw TesseraError(.notFound, "no judgements file for split '\(split)'", location: .init(path: qrelsPath))
        }
        var judgements = RetrievalMetrics.Judgements()
        for (index, rawLine) in String(decoding: qrelsData, as: UTF8.self).split(separator: "\n").enumerated() {
            let fields = rawLine.split(separator: "\t").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            if index == 0, fields.first == "query-id" { continue }
            guard fields.count >= 3, let grade = Int(fields[2]) else {
                throw TesseraError(
                    .invalidArgument,
                    "expected 'query-id<TAB>corpus-id<TAB>score', got '\(rawLine)'",
                    location: .init(path: qrelsPath, line: index + 1)
                )
            }
            judgements[fields[0], default: [:]][fields[1]] = grade
        }
        self.judgements = judgements
        let queriesPath = folder.appendingPathComponent("queries.jsonl").path
        var queries: [Query] = []
        try Self.forEachJSONLine(path: queriesPath) { (object, line) throws(TesseraError) in
            let id = try Self.stringField(object, "_id", path: queriesPath, line: line)
            guard judgements[id] != nil else { return }
            queries.append(Query(id: id, text: try Self.stringField(object, "text", path: queriesPath, line: line)))
        }
        self.queries = queries
    }

    static func forEachJSONLine(
        path: String,
        _ body: ([String: Any], Int) throws(TesseraError) -> Void
    ) throws(TesseraError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TesseraError(.notFound, "cannot read the file", location: .init(path: path))
        }
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { continue }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                throw TesseraError(.invalidArgument, "not a JSON object", location: .init(path: path, line: lineNumber))
            }
            try body(object, lineNumber)
        }
    }

    static func stringField(
        _ object: [String: Any],
        _ name: String,
        path: String,
        line: Int
    ) throws(TesseraError)
        -> String
    {
        if let value = object[name] as? String { return value }
        if let value = object[name] as? NSNumber { return value.stringValue }
        throw TesseraError(
            .invalidArgument,
            "missing or non-string '\(name)'",
            location: .init(path: path, field: name, line: line)
        )
    }
}
