/// An error from a Tessera collection: opening it, validating input, reading or writing the store.
///
/// Every error says what kind of failure it is (``code``), explains it in words (``message``) and, where it
/// applies, says where the problem is (``location``): the collection directory, the point or JSON field, a line or
/// a byte offset.
public struct TesseraError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is. New kinds can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case notFound
            case alreadyExists
            case invalidArgument
            case dimensionMismatch
            case configurationMismatch
            case corrupted
            case io
            case locked
        }
        private let kind: Kind

        /// A collection, point or payload key that was asked for does not exist.
        public static let notFound = Code(kind: .notFound)
        /// A collection was to be created where one already exists.
        public static let alreadyExists = Code(kind: .alreadyExists)
        /// An argument or input value is not allowed: an unknown field, a non-finite number, malformed JSON, ….
        public static let invalidArgument = Code(kind: .invalidArgument)
        /// A vector's length does not match its field's configured dimension.
        public static let dimensionMismatch = Code(kind: .dimensionMismatch)
        /// A collection was opened with an expected configuration other than the stored one.
        public static let configurationMismatch = Code(kind: .configurationMismatch)
        /// Stored data cannot be read back: a truncated blob, unparsable JSON, an unknown schema.
        public static let corrupted = Code(kind: .corrupted)
        /// The operating system or SQLite failed to read or write.
        public static let io = Code(kind: .io)
        /// Another process owns the collection or data folder (see ``CollectionStore`` on the one-owner rule), or a
        /// write was asked of a store opened read-only.
        public static let locked = Code(kind: .locked)

        public var description: String { String(describing: kind) }
    }

    /// Where the problem is. Every part is optional; ``TesseraError/description`` prints those that are set.
    public struct Location: Hashable, Sendable {
        /// The collection directory or file.
        public var path: String?
        /// The point id, vector field or JSON field path (for example `must[0].match.value`).
        public var field: String?
        /// A line number in a text input.
        public var line: Int?
        /// A byte offset into a file or blob, or an index into a batch.
        public var offset: Int?

        /// Creates a location from the parts that are known.
        /// - Parameters:
        ///   - path: The collection directory or file.
        ///   - field: The point id, vector field or JSON field path.
        ///   - line: A line number in a text input.
        ///   - offset: A byte offset, or an index into a batch.
        public init(path: String? = nil, field: String? = nil, line: Int? = nil, offset: Int? = nil) {
            self.path = path
            self.field = field
            self.line = line
            self.offset = offset
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// The failure in words, with the values involved.
    public var message: String
    /// Where the problem is.
    public var location: Location
    /// The underlying error's description (from SQLite or the operating system), when there is one.
    public var cause: String?

    /// Creates an error.
    /// - Parameters:
    ///   - code: What kind of failure this is.
    ///   - message: The failure in words.
    ///   - location: Where the problem is.
    ///   - cause: The underlying error's description.
    public init(_ code: Code, _ message: String, location: Location = Location(), cause: String? = nil) {
        self.code = code
        self.message = message
        self.location = location
        self.cause = cause
    }

    public var description: String {
        var parts: [String] = []
        if let path = location.path { parts.append("path \(path)") }
        if let field = location.field { parts.append("field \(field)") }
        if let line = location.line { parts.append("line \(line)") }
        if let offset = location.offset { parts.append("offset \(offset)") }
        var text = message
        if !parts.isEmpty { text += " (" + parts.joined(separator: ", ") + ")" }
        if let cause { text += "; cause: \(cause)" }
        return text
    }
}
