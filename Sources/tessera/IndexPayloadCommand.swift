import ArgumentParser
import Foundation
import Tessera

/// `tessera index-payload`: declares, or with `--delete` removes, a payload index of a collection.
struct IndexPayloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index-payload",
        abstract: "Indexes a payload key, so that filters on it read the index instead of every payload.",
        discussion: """
            TYPE is Qdrant's field_schema: keyword, integer, float, bool, uuid, datetime or text (geo is not \
            supported). A text index splits values into words as Qdrant's default word tokenizer; with --scoring it \
            also keeps the BM25 statistics a text query ranks by. The index is recorded in the collection and kept in step with every write; filters give \
            the same answers with or without it. `tessera info` lists a collection's payload indexes. A collection \
            being served cannot be changed from the command line: use PUT /collections/NAME/index.
            """
    )

    @Argument(help: "The collection's name (a folder under --data).")
    var collection: String

    @Argument(help: "The payload key, as a filter names it: city, country.name, tags[], items[].sku.")
    var field: String

    @Argument(help: "keyword, integer, float, bool, uuid, datetime or text (omit with --delete).")
    var type: String?

    @Option(help: "The folder holding collections.")
    var data = "collections"

    @Flag(help: "Remove the payload index on FIELD instead.")
    var delete = false

    @Flag(help: "For a text index: keep BM25 statistics, so that text queries can rank by the key.")
    var scoring = false

    func validate() throws {
        if delete, type != nil { throw ValidationError("--delete takes no TYPE") }
        if scoring, type != "text" { throw ValidationError("--scoring applies to a text index only") }
        if !delete, type == nil {
            throw ValidationError("give the index's TYPE: keyword, integer, float, bool, uuid, datetime, text")
        }
    }

    func run() async throws {
        let catalog = try CollectionCatalog(directory: data)
        let store = try catalog.open(collection)
        if delete {
            let removed = try store.deletePayloadIndex(field: field)
            print(removed ? "removed the payload index on '\(field)'" : "no payload index on '\(field)'")
        } else {
            let kind =
                scoring
                ? try PayloadIndexType(fieldSchema: ["type": "text", "scoring": true], field: field)
                : try PayloadIndexType(name: type!, field: field)
            let start = ContinuousClock.now
            try store.createPayloadIndex(field: field, type: kind)
            let info = try store.payloadIndexes().first { $0.field == field }
            print(
                "indexed '\(field)' as \(kind): \(info?.pointCount ?? 0) of \(store.count()) points hold a \(kind) "
                    + "value (\(ContinuousClock.now - start))"
            )
        }
        try store.close()
    }
}
