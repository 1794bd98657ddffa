import ArgumentParser
import Foundation
import Tessera

/// `tessera list`: the collections under a data folder.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Lists the collections under --data with their size and fields."
    )

    @Option(help: "The folder holding collections.")
    var data = "collections"

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let catalog = try CollectionCatalog(directory: data, access: .readOnly)
        struct Entry: Codable {
            var name: String
            var points: Int
            var fields: [String]
        }
        var entries: [Entry] = []
        for name in catalog.names() {
            let store = try catalog.open(name)
            entries.append(
                Entry(
                    name: name,
                    points: store.count(),
                    fields: store.configuration.fields.map { field in
                        "\(field.name) (\(field.isMultivector ? "multivector" : field.isSparse ? "sparse" : "dense") \(field.dimension))"
                    }
                )
            )
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
            return
        }
        if entries.isEmpty { print("no collections in \(data)") }
        for entry in entries {
            print("\(entry.name)  \(entry.points) points  " + entry.fields.joined(separator: ", "))
        }
    }
}

/// `tessera delete`: a whole collection, or some of its points.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Deletes a collection, or the points of it named by --ids or matched by --filter.",
        discussion: "A collection being served cannot be changed from the command line: the server owns it."
    )

    @Argument(help: "The collection's name (a folder under --data).")
    var collection: String

    @Option(help: "The folder holding collections.")
    var data = "collections"

    @Option(help: "Delete only these points: document ids or point ids, comma-separated.")
    var ids: String?

    @Option(help: "Delete only the points matching this payload filter (Qdrant's JSON shape).")
    var filter: String?

    func validate() throws {
        guard ids == nil || filter == nil else { throw ValidationError("give --ids or --filter, not both") }
    }

    func run() async throws {
        let catalog = try CollectionCatalog(directory: data)
        guard ids != nil || filter != nil else {
            guard try catalog.delete(collection) else {
                throw CommandError("no collection '\(collection)' in \(data)")
            }
            print("deleted collection \(collection)")
            return
        }
        let store = try catalog.open(collection)
        let removed: Int
        if let ids {
            let points = ids.split(separator: ",").map {
                pointID(forDocumentID: $0.trimmingCharacters(in: .whitespaces))
            }
            removed = try store.delete(ids: points)
        } else {
            removed = try store.delete(filter: try Filter(json: filter!))
        }
        print("deleted \(removed) points from \(collection); \(store.count()) remain")
    }
}
