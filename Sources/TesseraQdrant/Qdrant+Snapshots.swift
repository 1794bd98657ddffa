import Foundation
public import Tessera

extension Qdrant {
    /// One snapshot as Qdrant describes it: `name`, `creation_time` (UTC, `yyyy-mm-ddThh:mm:ss`), `size` (bytes)
    /// and `checksum` (SHA-256, lower-case hexadecimal).
    public struct SnapshotDescription: Encodable, Sendable {
        public var name: String
        public var creationTime: String
        public var size: Int
        public var checksum: String?

        enum CodingKeys: String, CodingKey {
            case name
            case creationTime = "creation_time"
            case size
            case checksum
        }

        /// Qdrant's description of a snapshot file.
        public init(_ description: Tessera.SnapshotDescription) {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
            name = description.name
            creationTime = formatter.string(from: description.creationTime)
            size = description.byteCount
            checksum = description.checksum
        }
    }

    /// Qdrant's snapshot priorities. A single node has no replicas to prefer: every value is accepted and the
    /// snapshot's data is what the collection holds afterwards.
    public static let snapshotPriorities: Set<String> = ["no_sync", "snapshot", "replica"]

    /// The body of `PUT /collections/{name}/snapshots/recover`: `location` (`file://` or `http(s)://`),
    /// `priority`, `checksum` (the SHA-256 the file must have), `api_key` (sent to an `http(s)` location as its
    /// `api-key` header).
    public struct SnapshotRecover: Decodable, Sendable {
        public var location: String
        public var priority: String?
        public var checksum: String?
        public var apiKey: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case location, priority, checksum
            case apiKey = "api_key"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            location = try container.decode(String.self, forKey: .location)
            priority = try container.decodeIfPresent(String.self, forKey: .priority)
            checksum = try container.decodeIfPresent(String.self, forKey: .checksum)
            apiKey = try container.decodeIfPresent(String.self, forKey: .apiKey)
            if let priority, !Qdrant.snapshotPriorities.contains(priority) {
                throw invalid(
                    decoder.codingPath + [CodingKeys.priority],
                    "unknown priority '\(priority)' (expected no_sync, snapshot or replica)"
                )
            }
            if let checksum { try Qdrant.checkSHA256(checksum, path: decoder.codingPath + [CodingKeys.checksum]) }
        }
    }

    /// Checks a SHA-256 given in hexadecimal: 64 hexadecimal digits.
    public static func checkSHA256(_ text: String, path: [any CodingKey] = []) throws {
        guard text.utf8.count == 64, text.utf8.allSatisfy({ $0 < 128 && Character(Unicode.Scalar($0)).isHexDigit })
        else {
            throw invalid(path, "checksum must be a SHA-256 in hexadecimal (64 digits), not '\(text)'")
        }
    }
}
