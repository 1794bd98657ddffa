import Foundation
import HTTPTypes
import TesseraPlatform

/// Finds one field of a `multipart/form-data` body (RFC 7578) saved to a file, without reading the body into
/// memory: the file is mapped and searched for the boundary.
enum MultipartUpload {
    /// Where a field's bytes lie in the saved body.
    struct Part {
        var range: Range<Int>
        var fileName: String?
    }

    /// The `boundary` parameter of a `multipart/form-data` content type.
    static func boundary(contentType: String) -> String? {
        let pieces = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard pieces.first?.lowercased() == "multipart/form-data" else { return nil }
        for piece in pieces.dropFirst() where piece.lowercased().hasPrefix("boundary=") {
            var value = String(piece.dropFirst("boundary=".count))
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            return value.isEmpty ? nil : value
        }
        return nil
    }

    /// Finds field `field` in the body saved at `path`.
    /// - Throws: ``APIError`` 400 when the body is not multipart with that boundary or has no such field.
    static func extract(field: String, boundary: String, from path: String) throws -> Part {
        let mapping: SharedMapping
        do {
            mapping = try SharedMapping(path: path)
        } catch {
            throw APIError(.badRequest, "Bad request: the upload is empty")
        }
        let bytes = mapping.bytes
        let delimiter = Array("--\(boundary)".utf8)
        let separator = Array("\r\n\r\n".utf8)
        func find(_ needle: [UInt8], from start: Int) -> Int? {
            guard let first = needle.first, start >= 0, bytes.count >= needle.count else { return nil }
            var index = start
            let last = bytes.count - needle.count
            while index <= last {
                if bytes[index] == first {
                    var matched = 1
                    while matched < needle.count, bytes[index + matched] == needle[matched] { matched += 1 }
                    if matched == needle.count { return index }
                }
                index += 1
            }
            return nil
        }
        var position = find(delimiter, from: 0)
        while let at = position {
            let headersStart = at + delimiter.count + 2
            guard headersStart <= bytes.count, let headersEnd = find(separator, from: headersStart) else { break }
            let headers = String(
                decoding: UnsafeRawBufferPointer(rebasing: bytes[headersStart..<headersEnd]),
                as: UTF8.self
            )
            let contentStart = headersEnd + separator.count
            guard let next = find(Array("\r\n--\(boundary)".utf8), from: contentStart) else { break }
            if let disposition = headers.split(separator: "\r\n").first(where: {
                $0.lowercased().hasPrefix("content-disposition:")
            }), parameter("name", in: String(disposition)) == field {
                return Part(range: contentStart..<next, fileName: parameter("filename", in: String(disposition)))
            }
            position = next + 2
        }
        throw APIError(.badRequest, "Bad request: the upload has no '\(field)' file field")
    }

    /// A `name="value"` parameter of a `Content-Disposition` header.
    private static func parameter(_ name: String, in header: String) -> String? {
        for piece in header.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard piece.hasPrefix("\(name)=") else { continue }
            var value = String(piece.dropFirst(name.count + 1))
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            return value
        }
        return nil
    }

    /// Writes a part's bytes to `target` (temporary name, fsync, rename).
    static func copy(_ part: Part, from path: String, to target: String) throws {
        let mapping = try SharedMapping(path: path)
        let chunk = UnsafeRawBufferPointer(rebasing: mapping.bytes[part.range])
        try AtomicFile.write(chunks: [chunk], to: target)
    }
}
