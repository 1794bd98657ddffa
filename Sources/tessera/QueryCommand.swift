import ArgumentParser
import Foundation
import MaxSim
import Tessera
import TesseraServer

/// `tessera query`: runs a query body in the JSON of the server's `/points/query` against a collection, through
/// the same pipeline, and prints the results as the server would.
struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Runs a /points/query JSON body (vectors, prefetch, fusion, filter) against a collection."
    )

    @Argument(help: "The collection's name (a folder under --data) or a path containing a '/'.")
    var collection: String

    @Option(help: "The folder holding collections.")
    var data = "collections"

    @Option(help: "The query body: a file, or '-' for standard input.")
    var body = "-"

    @Option(help: "Threads for MaxSim scoring and encoding.")
    var threads = 1

    @Option(help: "Arithmetic for every field: f32, bf16 (AVX512_BF16) or int8. Default: each field's own.")
    var precision: PrecisionChoice?

    @Option(
        help: """
            The model folder for text queries ({"text": …} in a vector field's place). Default: the model each \
            field was built with (checked by content hash).
            """
    )
    var model: String?

    func run() async throws {
        let data =
            body == "-"
            ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: body)
        guard let data else { throw CommandError("cannot read \(body)") }
        let json = try JSONValue.parse(String(decoding: data, as: UTF8.self))
        let catalog: CollectionCatalog
        let name: String
        if collection.contains("/") {
            let url = URL(fileURLWithPath: collection)
            catalog = try CollectionCatalog(directory: url.deletingLastPathComponent().path, access: .readOnly)
            name = url.lastPathComponent
        } else {
            catalog = try CollectionCatalog(directory: self.data, access: .readOnly)
            name = collection
        }
        let fallback = FileManager.default.fileExists(atPath: defaultModelDirectory) ? defaultModelDirectory : nil
        let encoder = EncoderCatalog(
            defaultModelDirectory: model ?? fallback,
            threadCount: threads,
            precision: precision?.precision
        )
        let result = try QueryRunner(catalog: catalog, threadCount: threads, encoder: encoder)
            .run(json, collection: name)
        print(result.jsonText)
    }
}
