import Foundation
import TesseraPlatform

/// Precomputed vectors to import into a collection (``CollectionStore/importPoints(_:options:progress:)``): per
/// vector field an array file, with token offsets for a multivector field; the point ids; optionally one JSON
/// payload per point.
///
/// Point `i` has id line (or entry) `i`, payload line `i`, and in each multivector field the rows
/// `offsets[i] ..< offsets[i + 1]` of the field's array (in a dense field, row `i`).
public struct ImportSpecification: Sendable, Equatable {
    /// One vector field's input.
    public struct Field: Sendable, Equatable {
        /// The collection's field.
        public var name: String
        /// `FILE.npy`, `FILE.safetensors` or `FILE.safetensors:TENSOR`: a `[rows, dimension]` float array.
        public var vectors: String
        /// For a multivector field: an integer array of `points + 1` offsets into the rows, from 0.
        public var offsets: String?

        /// Creates a field's input.
        public init(name: String, vectors: String, offsets: String? = nil) {
            self.name = name
            self.vectors = vectors
            self.offsets = offsets
        }
    }

    /// The fields, one per field of the collection.
    public var fields: [Field]
    /// The ids: a text file with one id per line (an unsigned integer or a UUID), or an integer `.npy` array.
    public var ids: String
    /// A JSON Lines file with one object per point, or `nil` for empty payloads.
    public var payload: String?

    /// Creates an import specification.
    public init(fields: [Field], ids: String, payload: String? = nil) {
        self.fields = fields
        self.ids = ids
        self.payload = payload
    }
}

/// An import's inputs, opened and checked: every structural property is checked when it is opened (shapes,
/// offsets, ids, payload lines); the vectors' values are checked by ``checkValues(points:configuration:)``
/// before anything is written.
public final class ImportSource: Sendable {
    struct FieldInput: Sendable {
        var name: String
        var vectors: ArrayFile
        /// `points + 1` offsets for a multivector field; `nil` for a dense field.
        var offsets: [Int]?

        func rows(of point: Int) -> Range<Int> {
            guard let offsets else { return point..<(point + 1) }
            return offsets[point]..<offsets[point + 1]
        }
    }

    /// The number of points.
    public let pointCount: Int
    let fields: [FieldInput]
    let ids: [PointID]
    /// Each point's payload as stored (compact JSON), `nil` for no payload file.
    private let payloads: [String]?
    /// What identifies these inputs for resuming: the files' names, sizes, shapes and sampled checksums.
    public let fingerprint: String

    /// The tokens of each field, by name (the points for a dense field).
    public var tokenCounts: [String: Int] {
        Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0.offsets?.last ?? pointCount) })
    }

    /// Opens and checks the inputs (everything but the vectors' values).
    /// - Parameter specification: The files.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the file and the row, entry or line at fault;
    ///   ``TesseraError/Code/io`` when a file cannot be read.
    /// - Complexity: O(points + payload bytes); the vectors are mapped, not read.
    public init(_ specification: ImportSpecification) throws(TesseraError) {
        guard !specification.fields.isEmpty else {
            throw TesseraError(.invalidArgument, "an import needs at least one vector field", location: .init())
        }
        let ids = try Self.readIDs(specification.ids)
        let count = ids.count
        var fields: [FieldInput] = []
        for field in specification.fields {
            if fields.contains(where: { $0.name == field.name }) {
                throw TesseraError(
                    .invalidArgument,
                    "field '\(field.name)' is given twice",
                    location: .init(field: field.name)
                )
            }
            let vectors = try ArrayFile(field.vectors)
            guard vectors.shape.count == 2, vectors.element.isFloat else {
                throw TesseraError(
                    .invalidArgument,
                    "\(vectors.name): field '\(field.name)' needs a two-dimensional float array [rows, dimension]; "
                        + "it is \(vectors.element) of shape \(vectors.shape)",
                    location: .init(path: vectors.name, field: field.name)
                )
            }
            var offsets: [Int]?
            if let path = field.offsets {
                offsets = try Self.readOffsets(path, pointCount: count, rowCount: vectors.rowCount, field: field.name)
            } else if vectors.rowCount != count {
                throw TesseraError(
                    .invalidArgument,
                    "\(vectors.name): dense field '\(field.name)' has \(vectors.rowCount) rows for \(count) ids "
                        + "(a multivector field needs its offsets)",
                    location: .init(path: vectors.name, field: field.name)
                )
            }
            fields.append(FieldInput(name: field.name, vectors: vectors, offsets: offsets))
        }
        var payloads: [String]?
        var payloadPrint = ""
        if let path = specification.payload {
            let read = try Self.readPayloads(path, pointCount: count, ids: ids)
            payloads = read.lines
            payloadPrint = read.fingerprint
        }
        self.pointCount = count
        self.fields = fields
        self.ids = ids
        self.payloads = payloads
        var print = fields.map { "\($0.name)=\($0.vectors.fingerprint())" }.joined(separator: ";")
        print += ";ids=\(Checksum.of(array: ids.flatMap { [UInt8]($0.sortKey) }))"
        print += ";payload=\(payloadPrint)"
        self.fingerprint = print
    }

    /// The configuration of a new collection for these inputs: each field with its array's dimension, a
    /// multivector field (MaxSim) where offsets are given, dense otherwise.
    /// - Parameters:
    ///   - elementType: The stored element type, or `nil` for the inputs' (float16 stays float16, others
    ///     float32).
    ///   - distance: Every field's distance.
    /// - Returns: The configuration.
    public func configuration(elementType: ElementType?, distance: Distance) -> CollectionConfiguration {
        CollectionConfiguration(
            fields: fields.map { input in
                let stored = elementType ?? (input.vectors.element == .float16 ? .float16 : .float32)
                return VectorField(
                    name: input.name,
                    dimension: input.vectors.columnCount,
                    kind: input.offsets == nil ? .dense(distance: distance) : .multivector(comparator: .maxSim),
                    elementType: stored,
                    encoder: nil,
                    multivectorDistance: input.offsets == nil ? nil : distance
                )
            }
        )
    }

    /// Checks that the inputs fill exactly the collection's fields, each with the right kind and dimension.
    /// - Throws: ``TesseraError/Code/invalidArgument`` or ``TesseraError/Code/dimensionMismatch`` naming the field.
    func check(against configuration: CollectionConfiguration) throws(TesseraError) {
        let given = Set(fields.map(\.name))
        for field in configuration.fields where !given.contains(field.name) {
            throw TesseraError(
                .invalidArgument,
                "the collection's field '\(field.name)' has no input; every point needs every field (inputs: "
                    + fields.map(\.name).joined(separator: ", ") + ")",
                location: .init(field: field.name)
            )
        }
        for input in fields {
            guard let field = configuration.field(named: input.name) else {
                throw TesseraError(
                    .invalidArgument,
                    "the collection has no field '\(input.name)' (it has: "
                        + configuration.fields.map(\.name).joined(separator: ", ") + ")",
                    location: .init(field: input.name)
                )
            }
            guard input.vectors.columnCount == field.dimension else {
                throw TesseraError(
                    .dimensionMismatch,
                    "\(input.vectors.name): rows of \(input.vectors.columnCount) values; field '\(field.name)' has "
                        + "dimension \(field.dimension)",
                    location: .init(path: input.vectors.name, field: field.name)
                )
            }
            guard !field.isSparse else {
                throw TesseraError(
                    .invalidArgument,
                    "field '\(field.name)' is a sparse field; import does not read sparse vectors (upsert them)",
                    location: .init(field: field.name)
                )
            }
            guard (input.offsets != nil) == field.isMultivector else {
                throw TesseraError(
                    .invalidArgument,
                    field.isMultivector
                        ? "field '\(field.name)' is a multivector field; give its token offsets"
                        : "field '\(field.name)' is a dense field; it takes no offsets",
                    location: .init(field: field.name)
                )
            }
        }
    }

    /// Checks every value of points `points` against the fields' rules (those of ``CollectionStore/upsert(_:)``:
    /// finite, within ±65504 for a float16 field), one pass over the vectors; `checked` is told the bytes checked
    /// (as stored) as it goes.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the file, row, component, point and id.
    func checkValues(
        points: Range<Int>,
        configuration: CollectionConfiguration,
        checked: (Int) -> Void
    ) throws(TesseraError) {
        for input in fields {
            let field = configuration.field(named: input.name)!
            let limit: Float = field.elementType.isFloat16 ? VectorCodec.float16Max : .greatestFiniteMagnitude
            let dimension = field.dimension
            var point = points.lowerBound
            let step = max(1, (1 << 20) / max(1, dimension))
            let firstRow = input.rows(of: points.lowerBound).lowerBound
            let endRow = points.isEmpty ? firstRow : input.rows(of: points.upperBound - 1).upperBound
            var row = firstRow
            while row < endRow {
                let end = min(endRow, row + step)
                let values = input.vectors.floats(rows: row..<end)
                if let bad = values.firstIndex(where: { !($0.isFinite && abs($0) <= limit) }) {
                    let badRow = row + bad / dimension
                    while input.rows(of: point).upperBound <= badRow { point += 1 }
                    let value = values[bad]
                    throw TesseraError(
                        .invalidArgument,
                        "\(input.vectors.name) row \(badRow), component \(bad % dimension): value \(value) is "
                            + (value.isFinite ? "outside float16's range ±65504" : "not finite")
                            + " (point \(point), id \(ids[point]), field '\(field.name)')",
                        location: .init(path: input.vectors.name, field: field.name, offset: badRow)
                    )
                }
                checked((end - row) * dimension * field.elementType.byteCount)
                row = end
            }
            input.vectors.releaseResidentPages()
        }
    }

    /// Point `point`'s payload as compact JSON (`{}` without a payload file).
    func payloadJSON(of point: Int) -> String { payloads?[point] ?? "{}" }

    /// Point `point`'s payload.
    func payload(of point: Int) -> JSONObject {
        guard let text = payloads?[point], case .object(let object)? = try? JSONValue.parse(text) else { return [:] }
        return object
    }

    /// Point `point`'s vectors in `field`, validated, normalised for a cosine field and encoded as stored
    /// (``VectorCodec`` layout), with their token count.
    func storedBlob(point: Int, field: VectorField, input: Int) -> (tokenCount: Int, data: Data) {
        let source = fields[input]
        let rows = source.rows(of: point)
        var values = source.vectors.floats(rows: rows)
        if field.storesUnitVectors { normalizeRows(&values, dimension: field.dimension) }
        let data = VectorCodec.encode(
            values,
            tokenCount: rows.count,
            dimension: field.dimension,
            elementType: field.elementType
        )
        return (rows.count, data)
    }

    /// The index of field `name` among the inputs.
    func inputIndex(of name: String) -> Int? { fields.firstIndex { $0.name == name } }

    /// Drops this process's resident pages of the vector files.
    func releaseResidentPages() { for field in fields { field.vectors.releaseResidentPages() } }

    // MARK: Reading the inputs

    private static func readIDs(_ path: String) throws(TesseraError) -> [PointID] {
        var ids: [PointID] = []
        var firstLine: [PointID: Int] = [:]
        func add(_ id: PointID, _ number: Int, _ what: String) throws(TesseraError) {
            if let earlier = firstLine[id] {
                throw TesseraError(
                    .invalidArgument,
                    "\(path) \(what) \(number): id \(id) repeats \(what) \(earlier); ids must be unique",
                    location: .init(
                        path: path,
                        line: what == "line" ? number : nil,
                        offset: what == "line" ? nil : number
                    )
                )
            }
            firstLine[id] = number
            ids.append(id)
        }
        if path.hasSuffix(".npy") || path.hasSuffix(".safetensors") || path.contains(".safetensors:") {
            let array = try ArrayFile(path)
            guard array.shape.count == 1, !array.element.isFloat else {
                throw TesseraError(
                    .invalidArgument,
                    "\(array.name): ids must be a one-dimensional integer array; it is \(array.element) of shape "
                        + "\(array.shape)",
                    location: .init(path: path)
                )
            }
            ids.reserveCapacity(array.rowCount)
            for index in 0..<array.rowCount {
                guard let value = array.integer(at: index), value >= 0 else {
                    throw TesseraError(
                        .invalidArgument,
                        "\(array.name) entry \(index): the id is negative or too large",
                        location: .init(path: path, offset: index)
                    )
                }
                try add(.integer(UInt64(value)), index, "entry")
            }
            return ids
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw TesseraError(.io, "cannot read \(path)", location: .init(path: path), cause: "\(error)")
        }
        var number = 0
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for line in lines {
            number += 1
            var text = String(decoding: line, as: UTF8.self)
            if text.hasSuffix("\r") { text.removeLast() }
            text = text.trimmingCharacters(in: .whitespaces)
            if text.isEmpty {
                // A final newline ends the last line; an empty line anywhere else is an error.
                if number == lines.count { continue }
                throw TesseraError(
                    .invalidArgument,
                    "\(path) line \(number) is empty; one id per line is expected",
                    location: .init(path: path, line: number)
                )
            }
            do { try add(try PointID(parsing: text), number, "line") } catch {
                if error.code == .invalidArgument, error.message.contains("repeats") { throw error }
                throw TesseraError(
                    .invalidArgument,
                    "\(path) line \(number): '\(text.prefix(60))' is neither an unsigned integer nor a UUID",
                    location: .init(path: path, line: number)
                )
            }
        }
        return ids
    }

    private static func readOffsets(
        _ path: String,
        pointCount: Int,
        rowCount: Int,
        field: String
    ) throws(TesseraError) -> [Int] {
        let array = try ArrayFile(path)
        guard array.shape.count == 1, !array.element.isFloat else {
            throw TesseraError(
                .invalidArgument,
                "\(array.name): offsets of '\(field)' must be a one-dimensional integer array; it is "
                    + "\(array.element) of shape \(array.shape)",
                location: .init(path: path, field: field)
            )
        }
        guard array.rowCount == pointCount + 1 else {
            throw TesseraError(
                .invalidArgument,
                "\(array.name): \(array.rowCount) offsets for \(pointCount) ids; \(pointCount + 1) are expected "
                    + "(from 0 to the row count)",
                location: .init(path: path, field: field)
            )
        }
        var offsets = [Int](repeating: 0, count: array.rowCount)
        for index in 0..<array.rowCount {
            let value = array.integer(at: index) ?? -1
            let previous = index == 0 ? 0 : offsets[index - 1]
            guard index == 0 ? value == 0 : value > previous else {
                throw TesseraError(
                    .invalidArgument,
                    "\(array.name) entry \(index): offset \(value) "
                        + (index == 0
                            ? "is not 0; offsets start at 0"
                            : "is not greater than entry \(index - 1) (\(previous)); point \(index - 1) "
                                + "needs at least one token"),
                    location: .init(path: path, field: field, offset: index)
                )
            }
            offsets[index] = value
        }
        guard offsets[pointCount] == rowCount else {
            throw TesseraError(
                .invalidArgument,
                "\(array.name): the last offset is \(offsets[pointCount]); the vectors have \(rowCount) rows",
                location: .init(path: path, field: field, offset: pointCount)
            )
        }
        return offsets
    }

    private static func readPayloads(
        _ path: String,
        pointCount: Int,
        ids: [PointID]
    ) throws(TesseraError) -> (lines: [String], fingerprint: String) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw TesseraError(.io, "cannot read \(path)", location: .init(path: path), cause: "\(error)")
        }
        var lines: [String] = []
        lines.reserveCapacity(pointCount)
        var number = 0
        let parts = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, line) in parts.enumerated() {
            number += 1
            if line.isEmpty || line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }), index == parts.count - 1 {
                continue
            }
            guard lines.count < pointCount else {
                throw TesseraError(
                    .invalidArgument,
                    "\(path) line \(number): more payload lines than the \(pointCount) ids",
                    location: .init(path: path, line: number)
                )
            }
            let value: JSONValue
            do { value = try JSONValue.parse(utf8: line) } catch {
                throw TesseraError(
                    .invalidArgument,
                    "\(path) line \(number) (point \(lines.count), id \(ids[lines.count])): \(error.message)",
                    location: .init(path: path, line: number)
                )
            }
            guard case .object = value else {
                throw TesseraError(
                    .invalidArgument,
                    "\(path) line \(number) (point \(lines.count), id \(ids[lines.count])): a payload is a JSON "
                        + "object",
                    location: .init(path: path, line: number)
                )
            }
            if value.containsNonFiniteNumber {
                throw TesseraError(
                    .invalidArgument,
                    "\(path) line \(number): the payload holds a non-finite number, which JSON cannot store",
                    location: .init(path: path, line: number)
                )
            }
            lines.append(value.jsonText)
        }
        guard lines.count == pointCount else {
            throw TesseraError(
                .invalidArgument,
                "\(path) has \(lines.count) payload lines for \(pointCount) ids",
                location: .init(path: path, line: number)
            )
        }
        let print = data.withUnsafeBytes { "\(data.count):\(Checksum.of($0))" }
        return (lines, print)
    }
}
