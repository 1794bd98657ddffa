import ArgumentParser
import Foundation
import MaxSim
import Tessera
import TesseraEncoder
import TesseraIndex

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Options shared by the commands that work on a collection.
struct CollectionOptions: ParsableArguments {
    @Argument(help: "The collection's name (a folder under --data) or a path containing a '/'.")
    var collection: String

    @Option(help: "The folder holding collections.")
    var data = "collections"

    @Option(help: "The model folder (Hugging Face layout). Default: the one the collection was built with.")
    var model: String?

    @Option(help: "Threads for encoding and scoring (default: every core).")
    var threads: Int?

    @Option(help: "Encoder arithmetic: f32, bf16 (AVX512_BF16) or int8. Default: the collection's (f32 if new).")
    var precision: PrecisionChoice?

    var path: String {
        collection.contains("/") ? collection : URL(fileURLWithPath: data).appendingPathComponent(collection).path
    }
}

/// The model folder used when none is named and the collection records none.
let defaultModelDirectory = bundledPath("models/all-MiniLM-L6-v2")

/// A path bundled with the repository (the default model, the sample passages): as given when it exists under
/// the working directory, else under the first folder above the executable that holds it (so that
/// `.build/release/tessera demo` works from any folder), else as given.
func bundledPath(_ relative: String) -> String {
    if FileManager.default.fileExists(atPath: relative) { return relative }
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var folder = executable.deletingLastPathComponent()
    for _ in 0..<5 {
        let candidate = folder.appendingPathComponent(relative).path
        if FileManager.default.fileExists(atPath: candidate) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    return relative
}

/// The names `tessera index` gives the fields it creates; every other command finds a collection's fields from its
/// configuration (``CollectionConfiguration/textTokenField``), so collections made over REST work alike.
let newTokenFieldName = "tokens"
let newPooledFieldName = "pooled"

/// Identifies a model folder's contents (see `EncoderCatalog.contentHash(ofModel:)`).
func modelContentHash(_ directory: String) throws -> String {
    try EncoderCatalog.contentHash(ofModel: directory)
}

/// The encoders of a collection: `--model` when given (checked against the model each field recorded), else the
/// model each field recorded, and for fields that record none (vectors written over REST) the default model folder
/// when it exists.
func encoderCatalog(_ options: CollectionOptions) -> EncoderCatalog {
    let fallback = FileManager.default.fileExists(atPath: defaultModelDirectory) ? defaultModelDirectory : nil
    return EncoderCatalog(
        defaultModelDirectory: options.model ?? fallback,
        threadCount: options.threads,
        precision: options.precision?.precision
    )
}

/// The multivector field text queries go to, or a usage error naming the collection.
func textTokenField(of store: CollectionStore, options: CollectionOptions) throws -> VectorField {
    guard let field = store.configuration.textTokenField else {
        throw CommandError(
            "collection '\(options.collection)' has no multivector field to search with text (fields: "
                + store.configuration.fields.map(\.name).joined(separator: ", ") + ")"
        )
    }
    return field
}

/// A progress line with a rate and an ETA, drawn on standard error when it is a terminal and silent otherwise.
struct ProgressBar {
    let total: Int
    let unit: String
    let start = Date()
    let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastDraw = Date.distantPast

    init(total: Int, unit: String) {
        self.total = total
        self.unit = unit
    }

    mutating func update(_ done: Int, force: Bool = false) {
        guard isTerminal else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) > 0.2 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let remaining = rate > 0 ? Double(total - done) / rate : 0
        let line = String(
            format: "\r%@ %3.0f%% %d/%d %@  %.1f/s  ETA %@ ",
            bar,
            fraction * 100,
            done,
            total,
            unit,
            rate,
            formatDuration(remaining)
        )
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard isTerminal else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "--" }
    let total = Int(seconds.rounded())
    return total >= 3600
        ? String(format: "%dh%02dm", total / 3600, total % 3600 / 60)
        : String(format: "%dm%02ds", total / 60, total % 60)
}

/// A point id for an external document id: the number itself when it is an unsigned integer, otherwise a
/// UUID derived from the id's bytes (two FNV-1a hashes), so re-indexing maps each document to the same point.
func pointID(forDocumentID documentID: String) -> PointID {
    if let number = UInt64(documentID) { return .integer(number) }
    if let uuid = UUID(uuidString: documentID) { return .uuid(uuid) }
    var first: UInt64 = 0xcbf2_9ce4_8422_2325
    var second: UInt64 = 0x84222325cbf29ce4
    for byte in documentID.utf8 {
        first = (first ^ UInt64(byte)) &* 0x100_0000_01b3  // FNV-1a arithmetic is modulo 2^64.
        second = (second ^ UInt64(byte)) &* 0x100_0000_01b3
        second = second &+ 0x9E37_79B9_7F4A_7C15
    }
    var bytes = [UInt8](repeating: 0, count: 16)
    for index in 0..<8 {
        bytes[index] = UInt8(truncatingIfNeeded: first >> (8 * index))
        bytes[8 + index] = UInt8(truncatingIfNeeded: second >> (8 * index))
    }
    bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8 (custom)
    bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
    let uuid = UUID(
        uuid: (
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
        )
    )
    return .uuid(uuid)
}

/// The external document id of a search result (the payload's `doc_id`, else the point id).
func documentID(of point: ScoredPoint) -> String {
    if case .string(let id)? = point.payload?["doc_id"] { return id }
    switch point.id {
    case .integer(let value): return String(value)
    case .uuid(let value): return value.uuidString.lowercased()
    }
}

/// Nanoseconds → milliseconds helper for latency tables.
func milliseconds(since start: UInt64) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
}

func percentile(_ values: [Double], _ fraction: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let position = min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))
    return sorted[position]
}

/// A failure while a command runs (unreadable input, a collection that does not fit): printed as `Error: …`
/// without the usage text, which is for mistakes in the command line itself (`ValidationError`).
struct CommandError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) { self.description = description }
}

/// One line of a JSONL file as a JSON object, or an error naming the file, the line and the position in it.
func jsonLine(_ line: some Collection<UInt8>, path: String, lineNumber: Int) throws -> JSONObject {
    do {
        guard case .object(let object) = try JSONValue.parse(utf8: line) else {
            throw CommandError("\(path):\(lineNumber): not a JSON object")
        }
        return object
    } catch let error as TesseraError {
        throw CommandError("\(path):\(lineNumber): not JSON: \(error.message)")
    }
}
