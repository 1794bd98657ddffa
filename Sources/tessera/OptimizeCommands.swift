import ArgumentParser
import Foundation
import Tessera

/// `tessera optimize`: what the server's background optimiser does, once, in the foreground.
struct OptimizeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimize",
        abstract: "Seals the appendable segment, merges and vacuums segments, builds missing indexes.",
        discussion: """
            Without --force, only what the collection's optimiser settings call for is done (Qdrant's \
            optimizers_config: indexing_threshold, deleted_threshold, vacuum_min_vector_number, \
            default_segment_number, max_segment_size). A collection being served is optimised by the server.
            """
    )

    @OptionGroup var options: CollectionOptions

    @Flag(help: "Seal whatever the appendable segment holds and build missing indexes whatever the collection's size.")
    var force = false

    @Flag(help: "Seal and merge only; build no derived index.")
    var noIndexes = false

    @Option(
        name: .customLong("index"),
        help: "Build only these kinds of derived index: compressed, hnsw, bm25 (repeat; default: all)."
    )
    var indexKinds: [String] = []

    @Option(help: "Merge down to at most this many segments (default: the collection's default_segment_number).")
    var segments: Int?

    @Option(help: "Store these optimiser settings first: Qdrant's optimizers_config as JSON.")
    var settings: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let store = try CollectionStore.open(at: options.path)
        if let settings {
            let decoded: OptimizerSettings
            do {
                decoded = try JSONDecoder().decode(OptimizerSettings.self, from: Data(settings.utf8))
            } catch {
                throw CommandError("--settings is not an optimizers_config object: \(error)")
            }
            try store.setOptimizerSettings(decoded)
        }
        var settings = try store.optimizerSettings()
        if let segments {
            guard segments >= 1 else { throw CommandError("--segments must be at least 1") }
            settings.defaultSegmentNumber = segments
        }
        var kinds = Set(DerivedIndexKind.allCases)
        if !indexKinds.isEmpty {
            kinds = []
            for name in indexKinds {
                guard let kind = DerivedIndexKind(rawValue: name) else {
                    throw CommandError("--index '\(name)': expected compressed, hnsw or bm25")
                }
                kinds.insert(kind)
            }
        }
        let start = ContinuousClock.now
        let report = try store.optimize(settings: settings, force: force, buildIndexes: !noIndexes, indexKinds: kinds)
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        let segmentsNow = store.segments()
        if json {
            print(
                JSONValue.object([
                    "sealed": .integer(Int64(report.sealedSegments)), "merges": .integer(Int64(report.merges)),
                    "vacuumed_points": .integer(Int64(report.vacuumedSlots)),
                    "indexes_built": .array(report.builtIndexes.map { .string($0) }),
                    "segments": .integer(Int64(segmentsNow.count)), "seconds": .double(seconds),
                ]).jsonText
            )
        } else {
            print(
                "sealed \(report.sealedSegments), merged \(report.merges) (\(report.vacuumedSlots) deleted points "
                    + "dropped), built \(report.builtIndexes.isEmpty ? "no index" : report.builtIndexes.joined(separator: ", ")) "
                    + String(format: "in %.1f s; ", seconds) + "\(segmentsNow.count) segments now"
            )
        }
        try store.close()
    }
}

/// `tessera verify`: every byte of every segment file against its checksums, and the database.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Checks every segment file byte by byte against its checksums, and the database's integrity.",
        discussion: "Opening a collection checks the segments' structure, not every vector byte; this does."
    )

    @OptionGroup var options: CollectionOptions

    func run() async throws {
        let store = try CollectionStore.open(at: options.path, access: .readOnly)
        try store.verifySegments()
        try store.checkIntegrity()
        let segments = store.segments()
        let bytes = segments.reduce(0) { $0 + $1.byteCount }
        print(
            "ok: \(store.count()) points, \(segments.count) segments "
                + String(format: "(%.1f MB) checked", Double(bytes) / 1e6)
        )
    }
}
