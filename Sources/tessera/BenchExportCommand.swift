import ArgumentParser
import Foundation
import MaxSim
import Tessera
import TesseraEncoder

/// `tessera bench export`: a collection's token vectors and a BEIR query set's, as flat binary files, so that
/// peer engines can be measured on exactly the vectors Tessera searches.
struct BenchExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Writes a collection's token vectors and its encoded BEIR queries as flat files for peer benchmarks.",
        discussion: """
            OUT receives documents.f16 ([tokens, dimension] little-endian float16), document_offsets.i64 \
            (documents + 1 offsets), document_ids.txt (the BEIR ids), queries.f32, query_offsets.i64, \
            query_ids.txt (the queries with judgements in --split) and meta.json.
            """
    )

    @OptionGroup var options: CollectionOptions

    @Option(help: "The BEIR folder whose queries are encoded.")
    var beir: String

    @Option(help: "The judgement split.")
    var split = "test"

    @Option(help: "The output folder.")
    var out: String

    func run() async throws {
        let store = try CollectionStore.open(at: options.path, access: .readOnly)
        let field = try textTokenField(of: store, options: options)
        let catalog = encoderCatalog(options)
        let dataset = try BEIRDataset(directory: beir, split: split, includeCorpus: false)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let view = store.scoringView()
        guard let column = view.column(named: field.name) else { throw CommandError("no field '\(field.name)'") }
        var documentValues: [Float16] = []
        documentValues.reserveCapacity(column.tokenCount * column.dimension)
        var documentOffsets: [Int64] = [0]
        var documentIDs: [String] = []
        for slot in view.liveSlots.slots {
            let values = column.floatValues(ofSlot: slot)
            documentValues += values.map { Float16($0) }
            documentOffsets.append(documentOffsets.last! + Int64(values.count / column.dimension))
            let payload = view.payload(ofSlot: slot)
            if case .string(let id)? = payload["doc_id"] {
                documentIDs.append(id)
            } else {
                documentIDs.append(view.pointIDs[slot].description)
            }
        }
        var queryValues: [Float] = []
        var queryOffsets: [Int64] = [0]
        for query in dataset.queries {
            let encoded = try catalog.encodeQuery(query.text, for: field)
            queryValues += encoded.vectors
            queryOffsets.append(queryOffsets.last! + Int64(encoded.tokenCount))
        }
        func write<T>(_ values: [T], _ name: String) throws {
            try values.withUnsafeBytes {
                try Data($0).write(to: URL(fileURLWithPath: out).appendingPathComponent(name))
            }
        }
        try write(documentValues, "documents.f16")
        try write(documentOffsets, "document_offsets.i64")
        try write(queryValues, "queries.f32")
        try write(queryOffsets, "query_offsets.i64")
        try (documentIDs.joined(separator: "\n") + "\n").write(
            toFile: out + "/document_ids.txt",
            atomically: true,
            encoding: .utf8
        )
        try (dataset.queries.map(\.id).joined(separator: "\n") + "\n").write(
            toFile: out + "/query_ids.txt",
            atomically: true,
            encoding: .utf8
        )
        let meta = """
            {"dimension": \(column.dimension), "documents": \(documentIDs.count), \
            "tokens": \(documentOffsets.last!), "queries": \(dataset.queries.count)}

            """
        try meta.write(toFile: out + "/meta.json", atomically: true, encoding: .utf8)
        print(
            "exported \(documentIDs.count) documents (\(documentOffsets.last!) tokens) and \(dataset.queries.count) queries to \(out)"
        )
    }
}
