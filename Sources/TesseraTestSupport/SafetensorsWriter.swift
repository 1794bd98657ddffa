import Foundation

/// Writes small safetensors files for tests, so no binary checkpoint is committed.
package enum SafetensorsWriter {
    /// The element types the writer can produce.
    package enum DataType: String, Sendable {
        case float32 = "F32"
        case float16 = "F16"
        case bfloat16 = "BF16"
        /// Written as 64-bit integers (each value truncated), to test readers that refuse them.
        case int64 = "I64"
    }

    /// One tensor to write.
    package struct Tensor: Sendable {
        package var name: String
        package var shape: [Int]
        package var values: [Float]
        package var dataType: DataType

        package init(name: String, shape: [Int], values: [Float], dataType: DataType = .float32) {
            self.name = name
            self.shape = shape
            self.values = values
            self.dataType = dataType
        }
    }

    /// Encodes tensors as a safetensors file: an 8-byte little-endian header length, the JSON header, the data.
    /// - Parameter tensors: The tensors, written in this order.
    /// - Returns: The file's bytes.
    package static func encode(_ tensors: [Tensor]) -> [UInt8] {
        var data: [UInt8] = []
        var entries: [String] = ["\"__metadata__\":{\"format\":\"pt\"}"]
        for tensor in tensors {
            let begin = data.count
            for value in tensor.values {
                switch tensor.dataType {
                case .float32: appendLittleEndian(value.bitPattern, to: &data)
                case .float16: appendLittleEndian(Float16(value).bitPattern, to: &data)
                case .bfloat16: appendLittleEndian(bfloat16Bits(value), to: &data)
                case .int64: appendLittleEndian(UInt64(bitPattern: Int64(value)), to: &data)
                }
            }
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(
                "\"\(tensor.name)\":{\"dtype\":\"\(tensor.dataType.rawValue)\",\"shape\":[\(shape)],"
                    + "\"data_offsets\":[\(begin),\(data.count)]}"
            )
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        // Pad the header with spaces to a multiple of 8 bytes, as the format recommends.
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var file: [UInt8] = []
        appendLittleEndian(UInt64(header.count), to: &file)
        return file + header + data
    }

    /// Writes tensors to a safetensors file.
    /// - Parameters:
    ///   - tensors: The tensors.
    ///   - path: The file to create or replace.
    /// - Throws: The file system's error.
    package static func write(_ tensors: [Tensor], to path: String) throws {
        try Data(encode(tensors)).write(to: URL(fileURLWithPath: path))
    }

    /// Rounds a `Float` to bfloat16 bits, to nearest even.
    package static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let rounding = UInt32(0x7fff) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    private static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Creates a fresh directory under the system's temporary directory.
/// - Parameter prefix: The start of the directory's name.
/// - Returns: The directory's path.
/// - Throws: The file system's error.
package func makeTemporaryDirectory(prefix: String = "tessera-test") throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}
