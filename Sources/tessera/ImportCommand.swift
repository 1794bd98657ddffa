import ArgumentParser
import Foundation
import Tessera

/// `tessera import`: precomputed vectors (from another encoder: ColPali, a ColBERT checkpoint…) straight into
/// sealed segments.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Imports precomputed vectors (.npy or .safetensors) into a collection's segments.",
        discussion: """
            Each --vectors FIELD=FILE gives a field's rows: FILE.npy, FILE.safetensors or \
            FILE.safetensors:TENSOR, a [rows, dimension] float32, float16 or bfloat16 array. A field with \
            --offsets FIELD=FILE (an integer array of points + 1 offsets into the rows, from 0) is a multivector \
            field, point i owning rows offsets[i] ..< offsets[i + 1]; a field without is dense, one row per point. \
            --ids is a text file with one id per line (an unsigned integer or a UUID) or an integer .npy array; \
            --payload a JSON Lines file with one object per point.

            Every input is checked before anything is written (a bad row, entry or line is named, and nothing is \
            stored). A collection that does not exist is created with the inputs' fields (--dtype, --distance). \
            Run the same command again after an interruption and it goes on after the last committed segment.
            """
    )

    @OptionGroup var options: CollectionOptions

    @Option(name: .customLong("vectors"), help: "FIELD=FILE: a field's vectors (repeat for each field).")
    var vectors: [String] = []

    @Option(name: .customLong("offsets"), help: "FIELD=FILE: a multivector field's token offsets.")
    var offsets: [String] = []

    @Option(help: "The point ids: one per line, or an integer .npy array.")
    var ids: String

    @Option(help: "One JSON payload object per line.")
    var payload: String?

    @Option(
        help: "Stored element type of a new collection: f32, f16 or int8 (default: f16 for float16 inputs, else f32)."
    )
    var dtype: StoredType?

    @Option(help: "Distance of a new collection's fields: cosine or dot.")
    var distance: String = "cosine"

    @Option(
        help: "At most this many MiB of vectors per segment (default: an even split into the optimiser's segments)."
    )
    var segmentMib: Int?

    @Flag(help: "Print the summary as JSON.")
    var json = false

    func run() async throws {
        func pairs(_ values: [String], _ option: String) throws -> [(String, String)] {
            try values.map { value in
                guard let equals = value.firstIndex(of: "="), equals != value.startIndex else {
                    throw CommandError("--\(option) '\(value)': expected FIELD=FILE")
                }
                return (String(value[..<equals]), String(value[value.index(after: equals)...]))
            }
        }
        let vectorInputs = try pairs(vectors, "vectors")
        guard !vectorInputs.isEmpty else { throw CommandError("give at least one --vectors FIELD=FILE") }
        let offsetInputs = Dictionary(try pairs(offsets, "offsets"), uniquingKeysWith: { first, _ in first })
        for field in offsetInputs.keys where !vectorInputs.contains(where: { $0.0 == field }) {
            throw CommandError("--offsets names field '\(field)', which has no --vectors")
        }
        let distance: Distance
        switch self.distance.lowercased() {
        case "cosine": distance = .cosine
        case "dot": distance = .dot
        default: throw CommandError("--distance must be cosine or dot, not '\(self.distance)'")
        }
        let specification = ImportSpecification(
            fields: vectorInputs.map { .init(name: $0.0, vectors: $0.1, offsets: offsetInputs[$0.0]) },
            ids: ids,
            payload: payload
        )
        let source = try ImportSource(specification)
        let store: CollectionStore
        var created = false
        if FileManager.default.fileExists(atPath: options.path) {
            store = try CollectionStore.open(at: options.path)
        } else {
            let configuration = source.configuration(elementType: dtype?.elementType, distance: distance)
            store = try CollectionStore.create(at: options.path, configuration: configuration)
            created = true
        }
        var bar = ProgressBar(total: 1, unit: "MB")
        var phase = ""
        let start = ContinuousClock.now
        var importOptions = ImportOptions()
        if let segmentMib {
            guard segmentMib >= 1 else { throw CommandError("--segment-mib must be at least 1") }
            importOptions.segmentByteLimit = segmentMib << 20
        }
        let report: ImportReport
        do {
            report = try store.importPoints(source, options: importOptions) { progress in
                let megabytes = max(1, progress.byteCount >> 20)
                if progress.phase == "committed" {
                    if !bar.isTerminal {
                        FileHandle.standardError.write(
                            Data("import: \(progress.pointsDone)/\(progress.pointCount) points committed\n".utf8)
                        )
                    }
                    return true
                }
                if progress.phase != phase {
                    bar.finish()
                    phase = progress.phase
                    bar = ProgressBar(total: megabytes, unit: "MB \(phase)")
                    if !bar.isTerminal {
                        FileHandle.standardError.write(Data("import: \(phase) \(megabytes) MB of vectors\n".utf8))
                    }
                }
                bar.update(progress.bytesDone >> 20)
                return true
            }
        } catch {
            bar.finish()
            if created, store.count() == 0 {
                try? store.close()
                try? FileManager.default.removeItem(atPath: options.path)
            }
            throw error
        }
        bar.finish()
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        let segments = store.segments().count
        if json {
            print(
                JSONValue.object([
                    "points": .integer(Int64(report.pointCount)),
                    "written": .integer(Int64(report.pointsWritten)),
                    "resumed_at": .integer(Int64(report.resumedAt)),
                    "replaced": .integer(Int64(report.replacedCount)),
                    "segments_written": .integer(Int64(report.segmentCount)),
                    "bytes": .integer(Int64(report.byteCount)), "seconds": .double(seconds),
                    "already_imported": .bool(report.wasComplete), "segments": .integer(Int64(segments)),
                ]).jsonText
            )
        } else if report.wasComplete {
            print("these inputs were already imported (\(report.pointCount) points); nothing written")
        } else {
            var line = "imported \(report.pointsWritten) points"
            if report.resumedAt > 0 { line += " (resumed after \(report.resumedAt))" }
            if report.replacedCount > 0 { line += ", replacing \(report.replacedCount)" }
            line +=
                " into \(report.segmentCount) segment(s), "
                + String(format: "%.1f MB in %.1f s; ", Double(report.byteCount) / 1e6, seconds)
                + "\(segments) segments now; `tessera optimize` builds the indexes (the server does it by itself)"
            print(line)
        }
        try store.close()
    }
}
