import Foundation

/// Writes small NumPy `.npy` files (format 1.0, C order) for tests.
package enum NpyWriter {
    /// The element types the writer can produce.
    package enum DataType: String, Sendable {
        case float32 = "<f4"
        case float16 = "<f2"
        case int64 = "<i8"
        case int32 = "<i4"
    }

    /// Encodes an array as a `.npy` file.
    /// - Parameters:
    ///   - values: The values, row-major (converted to the element type; integers truncated).
    ///   - shape: The extents.
    ///   - dataType: The element type.
    ///   - headerOverride: Header text written instead of the one the shape implies, to test readers.
    /// - Returns: The file's bytes.
    package static func encode(
        _ values: [Double],
        shape: [Int],
        dataType: DataType,
        headerOverride: String? = nil
    ) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header =
            headerOverride ?? "{'descr': '\(dataType.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + newline: a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let length = UInt16(header.utf8.count)
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
        bytes += Array(header.utf8)
        for value in values {
            switch dataType {
            case .float32: append(Float(value).bitPattern, to: &bytes)
            case .float16: append(Float16(Float(value)).bitPattern, to: &bytes)
            case .int64: append(UInt64(bitPattern: Int64(value)), to: &bytes)
            case .int32: append(UInt32(bitPattern: Int32(value)), to: &bytes)
            }
        }
        return bytes
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var little = value.littleEndian
        withUnsafeBytes(of: &little) { bytes.append(contentsOf: $0) }
    }
}
