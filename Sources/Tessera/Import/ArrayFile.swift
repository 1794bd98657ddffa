import Foundation
import TesseraPlatform

/// A numeric array read in place from a file: a NumPy `.npy` file, or one tensor of a `.safetensors` file.
///
/// The file is mapped read-only; rows are decoded on demand, so an array larger than memory can be read in
/// passes. Only C-ordered (row-major) arrays of one or two dimensions are accepted.
///
/// - `.npy`: format versions 1 to 3; element types `<f4`, `<f2`, `<i8`, `<i4`, `<u8`, `<u4` (and `|u1`/`|i1`).
/// - `.safetensors`: an 8-byte little-endian header length, a JSON header naming each tensor's `dtype`
///   (`F32`, `F16`, `BF16`, `I64`, `I32`, `U64`, `U32`), `shape` and `data_offsets`, then the data. A path of the
///   form `FILE.safetensors:NAME` picks the tensor `NAME`; without it the file must hold exactly one tensor.
struct ArrayFile: @unchecked Sendable {
    // @unchecked: the mapping is read-only and owned by `mapping`, which this value keeps alive.

    enum Element: Sendable, Equatable, CustomStringConvertible {
        case float32, float16, bfloat16, int64, int32, uint64, uint32, int8, uint8

        var byteCount: Int {
            switch self {
            case .float32, .int32, .uint32: 4
            case .float16, .bfloat16: 2
            case .int64, .uint64: 8
            case .int8, .uint8: 1
            }
        }

        var isFloat: Bool { self == .float32 || self == .float16 || self == .bfloat16 }

        var description: String {
            switch self {
            case .float32: "float32"
            case .float16: "float16"
            case .bfloat16: "bfloat16"
            case .int64: "int64"
            case .int32: "int32"
            case .uint64: "uint64"
            case .uint32: "uint32"
            case .int8: "int8"
            case .uint8: "uint8"
            }
        }
    }

    /// The name the file was given by (with `:TENSOR` for a safetensors tensor), for messages.
    let name: String
    let element: Element
    /// One or two extents.
    let shape: [Int]
    private let mapping: SharedMapping
    private let base: UnsafeRawPointer?
    /// The data's size in bytes.
    let dataByteCount: Int

    /// Rows: the first extent.
    var rowCount: Int { shape[0] }
    /// Values per row: the second extent, 1 for a one-dimensional array.
    var columnCount: Int { shape.count == 2 ? shape[1] : 1 }

    /// Opens an array file.
    /// - Parameter name: `FILE.npy`, `FILE.safetensors` or `FILE.safetensors:TENSOR`.
    /// - Throws: ``TesseraError/Code/invalidArgument`` naming the file and what is wrong with it (with the byte
    ///   offset where it helps); ``TesseraError/Code/io`` when it cannot be read.
    init(_ name: String) throws(TesseraError) {
        var path = name
        var tensor: String?
        if let colon = name.lastIndex(of: ":"), name[..<colon].hasSuffix(".safetensors") {
            path = String(name[..<colon])
            tensor = String(name[name.index(after: colon)...])
        }
        let mapping: SharedMapping
        do { mapping = try SharedMapping(path: path) } catch {
            throw TesseraError(.io, "cannot read \(path)", location: .init(path: path), cause: "\(error)")
        }
        let bytes = mapping.bytes
        let layout: (element: Element, shape: [Int], offset: Int, byteCount: Int)
        if path.hasSuffix(".safetensors") {
            layout = try Self.safetensorsLayout(bytes, path: path, tensor: tensor)
        } else if bytes.count >= 6, Array(bytes[0..<6]) == [0x93] + Array("NUMPY".utf8) {
            layout = try Self.npyLayout(bytes, path: path)
        } else {
            throw TesseraError(
                .invalidArgument,
                "\(path) is neither a .npy file (no \\x93NUMPY magic) nor a .safetensors file",
                location: .init(path: path, offset: 0)
            )
        }
        guard layout.shape.count == 1 || layout.shape.count == 2, layout.shape.allSatisfy({ $0 >= 0 }) else {
            throw TesseraError(
                .invalidArgument,
                "\(name) has shape \(layout.shape); one or two dimensions are expected",
                location: .init(path: path)
            )
        }
        let expected = layout.shape.reduce(1, *) * layout.element.byteCount
        guard layout.byteCount == expected, layout.offset >= 0, layout.offset + expected <= bytes.count else {
            throw TesseraError(
                .invalidArgument,
                "\(name): shape \(layout.shape) of \(layout.element) needs \(expected) bytes from byte "
                    + "\(layout.offset); the file has \(max(0, bytes.count - layout.offset)) (truncated?)",
                location: .init(path: path, offset: layout.offset)
            )
        }
        self.name = tensor.map { "\(path):\($0)" } ?? path
        self.element = layout.element
        self.shape = layout.shape
        self.mapping = mapping
        self.base = mapping.baseAddress.map { $0 + layout.offset }
        self.dataByteCount = expected
    }

    /// Value `index` (row-major) as an integer; `nil` for a float array or a value outside `Int`.
    func integer(at index: Int) -> Int? {
        guard let base else { return nil }
        let at = index * element.byteCount
        switch element {
        case .int64: return Int(Int64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: Int64.self)))
        case .int32: return Int(Int32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: Int32.self)))
        case .uint64:
            return Int(exactly: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)))
        case .uint32: return Int(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
        case .int8: return Int(base.loadUnaligned(fromByteOffset: at, as: Int8.self))
        case .uint8: return Int(base.loadUnaligned(fromByteOffset: at, as: UInt8.self))
        case .float32, .float16, .bfloat16: return nil
        }
    }

    /// Rows `rows` as `Float`, row-major; integer arrays are converted exactly where they can be.
    func floats(rows: Range<Int>) -> [Float] {
        let count = rows.count * columnCount
        guard count > 0, let base else { return [] }
        let start = base + rows.lowerBound * columnCount * element.byteCount
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            switch element {
            case .float32:
                for index in 0..<count {
                    buffer[index] = Float(
                        bitPattern: UInt32(
                            littleEndian: start.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)
                        )
                    )
                }
            case .float16:
                for index in 0..<count {
                    buffer[index] = Float(
                        Float16(
                            bitPattern: UInt16(
                                littleEndian: start.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)
                            )
                        )
                    )
                }
            case .bfloat16:
                for index in 0..<count {
                    let bits = UInt16(littleEndian: start.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self))
                    buffer[index] = Float(bitPattern: UInt32(bits) << 16)
                }
            default:
                for index in 0..<count {
                    buffer[index] = Float(integer(at: rows.lowerBound * columnCount + index) ?? 0)
                }
            }
            initialized = count
        }
    }

    /// A cheap fingerprint of the file: its size and the checksums of its first and last 64 KiB.
    func fingerprint() -> String {
        let bytes = mapping.bytes
        let head = UnsafeRawBufferPointer(rebasing: bytes[0..<min(bytes.count, 65_536)])
        let tail = UnsafeRawBufferPointer(rebasing: bytes[max(0, bytes.count - 65_536)..<bytes.count])
        return "\(name):\(bytes.count):\(Checksum.of(head)):\(Checksum.of(tail)):\(element):\(shape)"
    }

    /// Drops this process's resident pages of the file (after a pass over it).
    func releaseResidentPages() { mapping.file.releaseResidentPages() }

    // MARK: Headers

    private static func npyLayout(
        _ bytes: UnsafeRawBufferPointer,
        path: String
    ) throws(TesseraError) -> (element: Element, shape: [Int], offset: Int, byteCount: Int) {
        func bad(_ message: String, _ offset: Int) -> TesseraError {
            TesseraError(.invalidArgument, "\(path): \(message)", location: .init(path: path, offset: offset))
        }
        guard bytes.count >= 10 else { throw bad("the .npy header is cut short", bytes.count) }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(UInt16(bytes[8]) | UInt16(bytes[9]) << 8)
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw bad("the .npy header is cut short", bytes.count) }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw bad(".npy format version \(major) is not supported (1, 2 or 3 are)", 6)
        }
        guard headerStart + headerLength <= bytes.count else { throw bad("the .npy header is cut short", bytes.count) }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        func value(of key: String) -> Substring? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            return header[range.upperBound...].drop { $0 == " " }
        }
        guard let descrText = value(of: "descr"), let quote = descrText.first, quote == "'" || quote == "\"",
            let close = descrText.dropFirst().firstIndex(of: quote)
        else { throw bad("the .npy header has no 'descr'", headerStart) }
        let descr = String(descrText[descrText.index(after: descrText.startIndex)..<close])
        let elements: [String: Element] = [
            "<f4": .float32, "<f2": .float16, "<i8": .int64, "<i4": .int32, "<u8": .uint64, "<u4": .uint32,
            "|i1": .int8, "|u1": .uint8, "<i1": .int8, "<u1": .uint8,
        ]
        guard let element = elements[descr] else {
            throw bad(
                "element type '\(descr)' is not supported (little-endian float32, float16 or integers are)",
                headerStart
            )
        }
        if let order = value(of: "fortran_order"), order.hasPrefix("True") {
            throw bad("the array is Fortran-ordered; write it C-ordered (numpy.ascontiguousarray)", headerStart)
        }
        guard let shapeText = value(of: "shape"), shapeText.first == "(", let end = shapeText.firstIndex(of: ")")
        else { throw bad("the .npy header has no 'shape'", headerStart) }
        var shape: [Int] = []
        for part in shapeText[shapeText.index(after: shapeText.startIndex)..<end].split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let extent = Int(trimmed) else { throw bad("the shape '\(shapeText[...end])' is not numbers", 0) }
            shape.append(extent)
        }
        let offset = headerStart + headerLength
        return (element, shape, offset, shape.reduce(1, *) * element.byteCount)
    }

    private static func safetensorsLayout(
        _ bytes: UnsafeRawBufferPointer,
        path: String,
        tensor: String?
    ) throws(TesseraError) -> (element: Element, shape: [Int], offset: Int, byteCount: Int) {
        func bad(_ message: String, _ offset: Int) -> TesseraError {
            TesseraError(.invalidArgument, "\(path): \(message)", location: .init(path: path, offset: offset))
        }
        guard bytes.count >= 8 else { throw bad("shorter than a safetensors header", 0) }
        let length = Int(clamping: UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self)))
        guard length <= bytes.count - 8 else { throw bad("the header of \(length) bytes is cut short", 8) }
        let header: JSONValue
        do { header = try JSONValue.parse(utf8: UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + length)])) } catch {
            throw bad("the header is not JSON: \(error.message)", 8)
        }
        guard case .object(let entries) = header else { throw bad("the header is not a JSON object", 8) }
        let names = entries.keys.filter { $0 != "__metadata__" }.sorted()
        let chosen: String
        if let tensor {
            guard names.contains(tensor) else {
                throw bad("no tensor '\(tensor)' (it holds: \(names.joined(separator: ", ")))", 8)
            }
            chosen = tensor
        } else {
            guard names.count == 1 else {
                throw bad(
                    "holds \(names.count) tensors (\(names.joined(separator: ", "))); name one as FILE.safetensors:NAME",
                    8
                )
            }
            chosen = names[0]
        }
        guard case .object(let description) = entries[chosen], case .string(let dtype) = description["dtype"],
            case .array(let shapeValues) = description["shape"],
            case .array(let offsetValues) = description["data_offsets"],
            offsetValues.count == 2
        else { throw bad("tensor '\(chosen)' lacks dtype, shape or data_offsets", 8) }
        let elements: [String: Element] = [
            "F32": .float32, "F16": .float16, "BF16": .bfloat16, "I64": .int64, "I32": .int32, "U64": .uint64,
            "U32": .uint32, "I8": .int8, "U8": .uint8,
        ]
        guard let element = elements[dtype] else { throw bad("tensor '\(chosen)': dtype \(dtype) is not supported", 8) }
        func integer(_ value: JSONValue) -> Int? {
            switch value {
            case .integer(let number): Int(exactly: number)
            case .unsigned(let number): Int(exactly: number)
            case .double(let number): Int(exactly: number)
            default: nil
            }
        }
        let shape = shapeValues.compactMap(integer)
        let offsets = offsetValues.compactMap(integer)
        guard shape.count == shapeValues.count, offsets.count == 2, offsets[0] <= offsets[1] else {
            throw bad("tensor '\(chosen)': shape or data_offsets are not integers", 8)
        }
        return (element, shape, 8 + length + offsets[0], offsets[1] - offsets[0])
    }
}
