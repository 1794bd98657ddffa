import TesseraPlatform

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The element types a safetensors file may hold; Tessera converts the floating-point ones to `Float`.
enum SafetensorsDataType: Equatable, Sendable {
    case float32
    case float16
    case bfloat16
    /// Any other type (`I64`, `F64`, `U8`, …), kept by name so errors can say what it was.
    case other(String)

    init(name: String) {
        switch name {
        case "F32": self = .float32
        case "F16": self = .float16
        case "BF16": self = .bfloat16
        default: self = .other(name)
        }
    }

    /// The width of one element in bytes, or `nil` for an unknown type.
    var byteWidth: Int? {
        switch self {
        case .float32: 4
        case .float16, .bfloat16: 2
        case .other(let name):
            switch name {
            case "F64", "I64", "U64": 8
            case "I32", "U32": 4
            case "I16", "U16": 2
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2": 1
            default: nil
            }
        }
    }

    var name: String {
        switch self {
        case .float32: "F32"
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .other(let name): name
        }
    }
}

/// One tensor's entry in a safetensors header.
struct SafetensorsTensorInfo: Sendable {
    var dataType: SafetensorsDataType
    var shape: [Int]
    /// The tensor's bytes, as offsets from the start of the file.
    var byteRange: Range<Int>
}

/// A safetensors file, memory-mapped, with its header parsed and checked.
///
/// Layout: an 8-byte little-endian header length `N`, `N` bytes of JSON mapping tensor names to
/// `{dtype, shape, data_offsets}` (plus an optional `__metadata__` object), then the tensor data; `data_offsets`
/// count from the end of the header. Every offset is checked against the file's size when the file is opened, so
/// a truncated or corrupt file fails there with the file and byte offset named.
struct SafetensorsFile: ~Copyable {
    private let file: MappedFile
    /// The tensors by name.
    let tensors: [String: SafetensorsTensorInfo]

    var path: String { file.path }

    /// Opens and checks the safetensors file at `path`.
    /// - Parameter path: The file to open.
    /// - Throws: ``EncoderError`` `.missingFile`, or `.malformedFile` naming the byte offset of the problem.
    init(path: String) throws(EncoderError) {
        let file = try MappedFile.model(at: path)
        let fileByteCount = file.byteCount
        func malformed(_ message: String, field: String? = nil, offset: Int) -> EncoderError {
            EncoderError(.malformedFile, message, location: .init(path: path, field: field, offset: offset))
        }
        guard fileByteCount >= 8 else {
            throw malformed("file is \(fileByteCount) bytes, shorter than the 8-byte header length", offset: 0)
        }
        let headerByteCount = file.withUnsafeBytes { bytes in
            UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        }
        guard headerByteCount <= UInt64(fileByteCount - 8) else {
            throw malformed(
                "header length \(headerByteCount) runs past the end of the \(fileByteCount)-byte file",
                offset: 0
            )
        }
        let dataStart = 8 + Int(headerByteCount)
        let headerBytes = file.withUnsafeBytes { Data($0[8..<dataStart]) }
        let header: SafetensorsHeader
        do {
            header = try JSONDecoder().decode(SafetensorsHeader.self, from: headerBytes)
        } catch {
            throw malformed("the JSON header cannot be parsed: \(error)", offset: 8)
        }
        var tensors: [String: SafetensorsTensorInfo] = [:]
        for (name, entry) in header.entries {
            let dataType = SafetensorsDataType(name: entry.dtype)
            guard entry.dataOffsets.count == 2, entry.dataOffsets[0] >= 0, entry.dataOffsets[0] <= entry.dataOffsets[1]
            else {
                throw malformed("data_offsets \(entry.dataOffsets) are not [begin, end]", field: name, offset: 8)
            }
            let begin = dataStart + entry.dataOffsets[0]
            let end = dataStart + entry.dataOffsets[1]
            guard end <= fileByteCount else {
                throw malformed(
                    "tensor data ends at byte \(end), past the end of the \(fileByteCount)-byte file (truncated?)",
                    field: name,
                    offset: fileByteCount
                )
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }) else {
                throw malformed("negative dimension in shape \(entry.shape)", field: name, offset: 8)
            }
            if let byteWidth = dataType.byteWidth {
                let elementCount = entry.shape.reduce(1, *)
                guard elementCount * byteWidth == end - begin else {
                    throw malformed(
                        "\(end - begin) bytes of data for shape \(entry.shape) of \(dataType.name) "
                            + "(expected \(elementCount * byteWidth))",
                        field: name,
                        offset: begin
                    )
                }
            }
            tensors[name] = SafetensorsTensorInfo(dataType: dataType, shape: entry.shape, byteRange: begin..<end)
        }
        self.file = file
        self.tensors = tensors
    }

    /// Reads a floating-point tensor and converts it to `Float`.
    /// - Parameter name: The tensor's name in the file.
    /// - Returns: The shape and the elements in row-major order.
    /// - Throws: ``EncoderError`` `.missingTensor` or `.unsupportedDataType`, naming the tensor.
    func floats(_ name: String) throws(EncoderError) -> (shape: [Int], values: [Float]) {
        guard let info = tensors[name] else {
            throw EncoderError(.missingTensor, "no tensor '\(name)'", location: .init(path: path, field: name))
        }
        let elementCount = info.shape.reduce(1, *)
        let values: [Float]
        switch info.dataType {
        case .float32:
            values = file.withUnsafeBytes { bytes in
                (0..<elementCount).map { index in
                    Float(
                        bitPattern: UInt32(
                            littleEndian: bytes.loadUnaligned(
                                fromByteOffset: info.byteRange.lowerBound + 4 * index,
                                as: UInt32.self
                            )
                        )
                    )
                }
            }
        case .float16:
            values = file.withUnsafeBytes { bytes in
                (0..<elementCount).map { index in
                    let bits = UInt16(
                        littleEndian: bytes.loadUnaligned(
                            fromByteOffset: info.byteRange.lowerBound + 2 * index,
                            as: UInt16.self
                        )
                    )
                    return Float(halfBits: bits)
                }
            }
        case .bfloat16:
            values = file.withUnsafeBytes { bytes in
                (0..<elementCount).map { index in
                    let bits = UInt16(
                        littleEndian: bytes.loadUnaligned(
                            fromByteOffset: info.byteRange.lowerBound + 2 * index,
                            as: UInt16.self
                        )
                    )
                    // A bfloat16 is the upper half of a float32.
                    return Float(bitPattern: UInt32(bits) << 16)
                }
            }
        case .other(let typeName):
            throw EncoderError(
                .unsupportedDataType,
                "tensor '\(name)' has element type \(typeName); only F32, F16 and BF16 are read",
                location: .init(path: path, field: name, offset: info.byteRange.lowerBound)
            )
        }
        return (info.shape, values)
    }
}

extension Float {
    /// Converts IEEE 754 binary16 bits to `Float`, exactly (every half value is a float value).
    init(halfBits bits: UInt16) {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1f)
        let mantissa = UInt32(bits & 0x3ff)
        if exponent == 0x1f {
            // Infinity or NaN: keep the payload.
            self.init(bitPattern: sign | 0x7f80_0000 | (mantissa << 13))
        } else if exponent == 0 {
            // Zero or subnormal: value = mantissa * 2^-24.
            let magnitude = Float(mantissa) * 0x1p-24
            self = sign != 0 ? -magnitude : magnitude
        } else {
            self.init(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
        }
    }
}

/// The JSON header of a safetensors file: tensor entries by name; `__metadata__` is skipped.
private struct SafetensorsHeader: Decodable {
    struct Entry: Decodable {
        var dtype: String
        var shape: [Int]
        var dataOffsets: [Int]

        enum CodingKeys: String, CodingKey {
            case dtype
            case shape
            case dataOffsets = "data_offsets"
        }
    }

    struct NameKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    var entries: [String: Entry] = [:]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: NameKey.self)
        for key in container.allKeys where key.stringValue != "__metadata__" {
            entries[key.stringValue] = try container.decode(Entry.self, forKey: key)
        }
    }
}
